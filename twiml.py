"""TwiML documents, built with Twilio's own builder so every value is escaped."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Connect, VoiceResponse


def connect_stream(url: str, parameters: Mapping[str, str]) -> str:
    """`<Connect><Stream>` with one `<Parameter>` per item, and nothing after it.

    Twilio moves on to the next verb when the stream ends; with none, the call
    ends, which is what a caller expects when the bot hangs up.
    """
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def reject_busy() -> str:
    """`<Reject reason="busy"/>`: the caller hears a busy tone and the call is not billed."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response)
