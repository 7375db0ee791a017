"""Recording calls: on this server (a stereo WAV, kept on disk or in S3), or by Twilio."""
