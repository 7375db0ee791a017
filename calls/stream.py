"""WS /ws: one call's media stream (Twilio, or Exotel's Voicebot applet), run through the bot.

The upgrade's credentials are checked, the `start` message names the provider
and the call, admission takes a slot, and the call's pipeline runs until it
ends. Until `start` is verified the socket holds a handshake slot (at most
`MAX_HANDSHAKING` at once) and `START_TIMEOUT_SECS` bounds the wait for it.
Refusals close the socket with a code that says why:

    1008  bad or missing credentials for the provider `start` names, or a stream
          token that is missing, expired, or another call's (calls/tokens.py)
    1003  not a telephony stream (media before `start`, no `start` in time, …)
    1013  at capacity, draining, or too many streams handshaking: try again later
    1011  the server could not set the call up
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse
from loguru import logger
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams

from bot import Bot, EndReason
from calls.tokens import check_token
from config.recording import RecordingMode
from deps import (
    AdmissionDep,
    AssistantsDep,
    AttemptsDep,
    HandshakesDep,
    MetricsDep,
    RecordingsDep,
    RecordsDep,
    SettingsDep,
    ToolClientDep,
    TracesDep,
    VoiceDep,
)
from ops.admission import proxy_retries
from ops.metrics import Metrics, StreamRefusal
from records.attempts import AttemptStore
from records.recorder import Recorder
from settings import Settings
from telephony import (
    CallEvents,
    CallInfo,
    TelephonyError,
    Unauthorized,
    identify,
    read_start,
    serializer_for,
    transport_options,
)
from telephony.access import admitted_providers, confirm
from telephony.stream_token import TokenError
from tools.calls import CallTools, caller_identity
from transfer.handoff import Handoff
from urls import public_base, stream_url
from voice.pipecat.fastpath import TelephonyTransport

WS_POLICY_VIOLATION = 1008
WS_UNSUPPORTED_DATA = 1003
WS_INTERNAL_ERROR = 1011
WS_TRY_AGAIN_LATER = 1013
# Twilio sends `start` within milliseconds of the upgrade; an idle socket gets this long.
START_TIMEOUT_SECS = 5.0

router = APIRouter()


@router.websocket("/ws")
async def media_stream(
    websocket: WebSocket,
    settings: SettingsDep,
    voice: VoiceDep,
    admission: AdmissionDep,
    handshakes: HandshakesDep,
    metrics: MetricsDep,
    records: RecordsDep,
    assistants: AssistantsDep,
    tool_client: ToolClientDep,
    recordings: RecordingsDep,
    attempts: AttemptsDep,
    traces: TracesDep,
) -> None:
    """Run one call, from its `start` message to its hang-up."""
    if (refusal := admission.refusal) is not None and proxy_retries(websocket):
        # The proxy passes the stream on to another replica: it never reached this one.
        await websocket.send_denial_response(PlainTextResponse(f"busy: {refusal}", 503))
        return
    with handshakes.slot() as may_handshake:
        await websocket.accept()
        accepted_at = time.monotonic()
        if not may_handshake:
            metrics.stream_refused(StreamRefusal.TOO_MANY_HANDSHAKES)
            await refuse(websocket, WS_TRY_AGAIN_LATER, "too many streams handshaking")
            return
        call = await handshake(websocket, settings, metrics, attempts)
    if call is None:
        return
    with logger.contextualize(call_sid=call.call_sid), admission.admit() as has_slot:
        if not has_slot:
            # Twilio may open the stream on another replica than took the webhook.
            logger.warning(f"Media stream refused: {admission.refusal}")
            metrics.call_rejected(call.direction)
            records.rejected(
                call.call_sid,
                provider=call.provider,
                direction=call.direction,
                from_number=call.from_number,
                to_number=call.to_number,
                parameters=call.parameters,
            )
            await refuse(websocket, WS_TRY_AGAIN_LATER, f"busy: {admission.refusal}")
            return
        choice = assistants.for_call(call)
        if assistants.path is not None:  # the record and events name the assistant
            call = replace(call, parameters={**call.parameters, "assistant": choice.assistant.name})
        events = CallEvents()
        first_seq, history = await earlier_turns(records, call)
        recording = records.recording(call, first_seq=first_seq)
        tape = None
        if settings.recording is RecordingMode.LOCAL:
            tape = await recordings.start(call)
            if tape is not None:
                recording.set_recording("local", tape.path.name)
        elif settings.recording is RecordingMode.TWILIO:
            recordings.ask_twilio(settings, call, public_base(websocket, settings))
        trace = traces.start(call, accepted_at)

        async def finish(reason: EndReason) -> None:
            trace.end(reason)
            # The recording ends with the call, and is kept once the record has ended.
            if tape is not None:
                await tape.close()
            await recording.end(reason)
            if tape is not None:
                recordings.keep(tape)

        try:
            serializer = serializer_for(call, settings, events)
            transport = TelephonyTransport(
                websocket,
                FastAPIWebsocketParams(
                    audio_in_enabled=True,
                    audio_out_enabled=True,
                    add_wav_header=False,
                    serializer=tape.serializer(serializer) if tape else serializer,
                    allowed_origins=[],  # Twilio's websocket has no Origin header
                    **transport_options(call),
                ),
                audio_in_frame_ms=settings.audio_in_frame_ms,
            )
            tools = CallTools(
                choice.tools,
                tool_client,
                caller_identity(call, choice.assistant.name),
                filler=choice.assistant.filler,
                metrics=tool_client.metrics,
                on_called=lambda name, arguments, outcome: recording.tool_called(
                    name, arguments, outcome.result, **outcome.details
                ),
            )
            handoff = Handoff(
                call,
                settings,
                events,
                recording,
                public_base(websocket, settings),
                model=choice.assistant.llm_model,
            )
            bot = Bot(
                call,
                transport,
                voice,
                settings,
                assistant=choice.assistant,
                tools=tools,
                handoff=handoff,
                history=history,
            )
            recording.follow(bot.aggregators)
            metrics.watch(
                bot.worker, call.direction, accepted_at, recording.add_reply_latency, trace.reply
            )
        except Exception:
            logger.exception("Could not set the call up")
            await finish(EndReason.ERROR)
            await refuse(websocket, WS_INTERNAL_ERROR, "the server could not set the call up")
            return
        events.on_stop(bot.caller_left)
        admission.add(bot)
        named = f", assistant {choice.assistant.name}" if assistants.path is not None else ""
        logger.info(
            f"Call started ({call.provider}, {call.direction}, "
            f"from {call.from_number} to {call.to_number}{named})"
        )
        reason = EndReason.ERROR
        try:
            reason = await bot.run()
        finally:
            admission.remove(bot)
            await finish(reason)
        logger.info(f"Call ended: {reason}")
        metrics.call_ended(call.direction, reason, time.monotonic() - accepted_at)


async def handshake(
    websocket: WebSocket, settings: Settings, metrics: Metrics, attempts: AttemptStore
) -> CallInfo | None:
    """Check the upgrade's credentials, read the call from `start`, and check its token.

    Returns:
        The call; None when the stream was refused (and closed with the reason).
    """
    url = stream_url(public_base(websocket, settings))
    peer = websocket.client.host if websocket.client else None
    try:
        admitted = admitted_providers(websocket.headers, peer, url, settings)
        start = await read_start(websocket, within=START_TIMEOUT_SECS)
        call = identify(start)
        confirm(call, admitted)
        await check_token(start, call, settings, attempts)
    except TokenError as e:
        # The token itself is never logged: within its lifetime it admits its call's stream.
        # The call SID is only what the stream claims: quoted, never the line's call_sid.
        logger.warning(f"Media stream from {peer} for {call.call_sid[:40]!r} refused: {e}")
        metrics.stream_refused(StreamRefusal(e.reason))
        await refuse(websocket, WS_POLICY_VIOLATION, str(e))
        return None
    except Unauthorized as e:
        logger.warning(f"Media stream from {peer} refused: {e} (for {url})")
        metrics.signature_failed("media_stream")
        await refuse(websocket, WS_POLICY_VIOLATION, str(e))
        return None
    except TelephonyError as e:
        logger.warning(f"Media stream refused: {e}")
        metrics.stream_refused(StreamRefusal.HANDSHAKE)
        await refuse(websocket, WS_UNSUPPORTED_DATA, str(e))
        return None
    return call


async def earlier_turns(records: Recorder, call: CallInfo) -> tuple[int, list[tuple[str, str]]]:
    """A later leg's start: the last turn's place on record, and what was said (for the LLM).

    A caller back from a transfer talks to a bot that knows the conversation so far, and
    the new leg's transcript goes on after the earlier one.
    """
    if call.leg == 1:
        return 0, []
    try:
        record = await records.store.get_call(call.call_sid)
    except Exception as e:
        logger.error(f"The call's earlier turns could not be read: {type(e).__name__}")
        return 0, []
    if record is None:
        return 0, []
    said = [(t.role, t.text) for t in record.turns if t.role in ("user", "assistant")]
    return max((t.seq for t in record.turns), default=0), said


async def refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Close the socket with `code` and `reason`; nothing if the peer has already gone."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(code, reason)
