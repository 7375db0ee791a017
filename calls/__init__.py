"""The calls this server answers and runs: Twilio's webhook, and each call's media stream."""
