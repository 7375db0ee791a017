"""Twilio Media Streams: recognising a stream, its serializer, and request signatures."""

from __future__ import annotations

import base64
from typing import Any

from loguru import logger
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.utils import create_stream_resampler, ulaw_to_pcm
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.twilio import TwilioFrameSerializer
from starlette.requests import Request
from starlette.responses import Response
from twilio.request_validator import RequestValidator

from settings import Settings
from telephony.call_info import CONTROL_PARAMETERS, RESERVED_PARAMETERS, CallInfo
from telephony.serializer import CallEvents, SafeDecoding
from telephony.twilio_rest import api_base
from urls import signed_url

NAME = "twilio"
QUIET_EVENTS = frozenset({"connected", "start"})


def matches(start: dict[str, Any]) -> bool:
    """Whether a `start` message is Twilio's (camelCase `streamSid`)."""
    return "streamSid" in start or "streamSid" in start.get("start", {})


def custom_parameters(start: dict[str, Any]) -> dict[str, str]:
    """Every `<Parameter>` of a Twilio `start` message, as the TwiML gave it."""
    body = start.get("start")
    raw = body.get("customParameters") if isinstance(body, dict) else None
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def call_info(start: dict[str, Any]) -> CallInfo:
    """Read a Twilio `start` message.

    `from_number`, `to_number` and `direction` ride in `customParameters`
    because Twilio's `start` carries neither number.
    """
    body = start.get("start", {})
    custom = custom_parameters(start)
    media = body.get("mediaFormat") or {}
    return CallInfo(
        provider=NAME,
        call_sid=str(body.get("callSid", "")),
        stream_sid=str(body.get("streamSid") or start.get("streamSid", "")),
        account_sid=str(body.get("accountSid", "")),
        from_number=custom.get("from_number", ""),
        to_number=custom.get("to_number", ""),
        direction=custom.get("direction", "inbound"),
        parameters={k: v for k, v in custom.items() if k not in RESERVED_PARAMETERS},
        sample_rate=int(media.get("sampleRate", 8000)),
        encoding=str(media.get("encoding", "audio/x-mulaw")),
        control={k: v for k, v in custom.items() if k in CONTROL_PARAMETERS},
    )


def transport_options(call: CallInfo) -> dict[str, Any]:
    """Websocket transport settings for a Twilio call: the bot's audio in 100 ms messages.

    Twilio plays a media message of any length. Pipecat's default 40 ms chunks
    make 2.5 times the messages, and each costs about what its audio does:
    100 ms chunks take ~12 % off a call's CPU.
    """
    return {"audio_out_10ms_chunks": 10}


class TwilioSerializer(SafeDecoding, TwilioFrameSerializer):
    """Pipecat's Twilio serializer, hardened.

    It parses each frame once, survives malformed frames, ends the call on
    `stop`, and does not try to hang up a call the caller already left.
    """

    def __init__(self, call: CallInfo, settings: Settings, events: CallEvents):
        """Build the serializer for one call.

        Args:
            call: The call, from its `start` message.
            settings: Credentials for the automatic hang-up through the REST API.
            events: Where `stop` is reported.
        """
        token = settings.twilio_auth_token
        super().__init__(
            stream_sid=call.stream_sid,
            call_sid=call.call_sid,
            account_sid=settings.twilio_account_sid,
            auth_token=token.get_secret_value() if token else None,
            # The regional host from region and edge, as twilio-python builds it; else the base.
            base_url=None if settings.twilio_region else api_base(settings),
            region=settings.twilio_region,
            edge=settings.twilio_edge,
            params=TwilioFrameSerializer.InputParams(
                twilio_sample_rate=call.sample_rate, auto_hang_up=settings.can_hang_up
            ),
        )
        self.events = events
        # Our own decoding state, not the parent's private fields: those may change.
        self._wire_rate = call.sample_rate
        self._pipeline_rate = call.sample_rate
        self._caller_resampler = create_stream_resampler()

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        """Learn the pipeline's audio rate."""
        await super().setup(setup)
        self._pipeline_rate = setup.audio_in_sample_rate

    async def serialize(self, frame: Frame) -> str | bytes | None:
        """Encode a frame for Twilio; no hang-up when the caller left or the call moved on."""
        if isinstance(frame, (EndFrame, CancelFrame)) and self.events.ended_elsewhere:
            return None
        return await super().serialize(frame)

    async def _decode(self, message: dict[str, Any]) -> Frame | None:
        event = message.get("event")
        if event == "media":
            payload = base64.b64decode(message["media"]["payload"], validate=True)
            if not payload:
                return None
            pcm = await ulaw_to_pcm(
                payload, self._wire_rate, self._pipeline_rate, self._caller_resampler
            )
            return InputAudioRawFrame(audio=pcm, num_channels=1, sample_rate=self._pipeline_rate)
        if event == "dtmf":
            return InputDTMFFrame(KeypadEntry(message["dtmf"]["digit"]))
        if event == "mark":
            self.events.marked(str(message["mark"]["name"]))
            return None
        if event == "stop":
            logger.info("Twilio stopped the stream: the caller hung up")
            self.events.stopped()
            return None
        if event not in QUIET_EVENTS:
            logger.warning(f"Ignoring unknown Twilio event {event!r}")
        return None


def signature_is_valid(settings: Settings, url: str, params: Any, signature: str | None) -> bool:
    """Check `X-Twilio-Signature` for a request Twilio made to `url`.

    Args:
        settings: Holds the auth token.
        url: The full public URL Twilio requested (`wss://HOST/ws` for the stream).
        params: The POSTed form (Starlette's FormData keeps repeated keys), or `{}`.
        signature: The header's value, if any.
    """
    if not signature or settings.twilio_auth_token is None:
        return False
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    return bool(validator.validate(url, params, signature))


async def unsigned_refusal(request: Request, settings: Settings, what: str) -> Response | None:
    """The 403 to answer a request that claims to be Twilio's without a valid signature.

    Args:
        request: A webhook or callback Twilio POSTs a form to.
        settings: Whether signatures are checked, and the auth token.
        what: The endpoint, for the log line ("Webhook", "Status callback").

    Returns:
        None when the request may be handled (signed, or signatures are off).
    """
    if not settings.validates_signatures:
        return None
    url = signed_url(request, settings)
    form = await request.form()
    if signature_is_valid(settings, url, form, request.headers.get("x-twilio-signature")):
        return None
    logger.warning(f"{what} refused: bad X-Twilio-Signature for {url}")
    return Response("invalid signature", status_code=403, media_type="text/plain")
