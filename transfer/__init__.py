"""Transfers to a human, and ending calls from outside (call control over REST).

handoff.py   the bot's side: the handoff line, then Twilio's call update or Exotel's close
twilio.py    the `<Dial>` TwiML and the REST call update, with Twilio's refusals
links.py     the URLs Twilio comes back to: the dial's outcome, and the whisper (signed)
summary.py   the whisper: who is calling and why (the LLM's summary, or the last turns)
routes.py    the dial's outcome (back to the bot when nobody answered), and the whisper
"""
