"""Dial-out: placing calls through Twilio or Exotel, and following their status."""
