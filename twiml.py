"""TwiML documents, built with Twilio's own builder so every value is escaped."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Connect, VoiceResponse

from settings import Settings
from telephony.stream_token import ATTEMPT_PARAMETER, TOKEN_PARAMETER, issue, stream_secret
from urls import stream_url


def stream_to_bot(
    base: str,
    parameters: Mapping[str, str],
    settings: Settings,
    *,
    call_sid: str = "",
    attempt_id: str = "",
    ttl: float | None = None,
) -> str:
    """The TwiML that streams a call to `base`/ws, its parameters signed with a stream token.

    Every path that streams a call to the bot answers with this, so `/ws` can tell
    the stream is the one this server asked for (see `telephony.stream_token`).

    Args:
        base: Where Twilio reaches this server (`PUBLIC_URL`, or the webhook's host).
        parameters: The stream's parameters (`direction`, the numbers, call data).
        settings: The key, and `STREAM_TOKEN_TTL`. With no key no token is issued.
        call_sid: The call the stream is for, when Twilio has named it.
        attempt_id: The dial-out attempt, when Twilio has not named the call yet.
        ttl: Seconds the token is good for; `STREAM_TOKEN_TTL` when None.
    """
    secret = stream_secret(settings)
    signed = dict(parameters)
    if secret is not None:
        if attempt_id:
            signed[ATTEMPT_PARAMETER] = attempt_id
        signed[TOKEN_PARAMETER] = issue(
            secret,
            call_sid="" if attempt_id else call_sid,
            parameters=signed,
            ttl=settings.stream_token_ttl if ttl is None else ttl,
        )
    return connect_stream(stream_url(base), signed)


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
