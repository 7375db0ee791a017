"""WS /ws: one call's media stream (Twilio, or Exotel's Voicebot applet), run through the bot.

The upgrade's credentials are checked, the `start` message names the provider
and the call, admission takes a slot, and the call's pipeline runs until it
ends. Refusals close the socket with a code that says why:

    1008  bad or missing credentials for the provider `start` names
    1003  not a telephony stream (media before `start`, unknown provider, …)
    1013  at capacity or draining: try again later (another replica)
    1011  the server could not set the call up
"""

from __future__ import annotations

import time
from dataclasses import replace

from fastapi import APIRouter, WebSocket
from fastapi.responses import PlainTextResponse
from loguru import logger
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams

from bot import Bot, EndReason
from config.recording import RecordingMode
from deps import (
    AdmissionDep,
    AssistantsDep,
    MetricsDep,
    RecordingsDep,
    RecordsDep,
    SettingsDep,
    ToolClientDep,
    TracesDep,
    VoiceDep,
)
from ops.admission import proxy_retries
from telephony import (
    CallEvents,
    TelephonyError,
    Unauthorized,
    identify,
    read_start,
    serializer_for,
    transport_options,
)
from telephony.access import admitted_providers, confirm
from tools.calls import CallTools, caller_identity
from urls import public_base, stream_url
from voice.pipecat.fastpath import TelephonyTransport

WS_POLICY_VIOLATION = 1008
WS_UNSUPPORTED_DATA = 1003
WS_INTERNAL_ERROR = 1011
WS_TRY_AGAIN_LATER = 1013

router = APIRouter()


@router.websocket("/ws")
async def media_stream(
    websocket: WebSocket,
    settings: SettingsDep,
    voice: VoiceDep,
    admission: AdmissionDep,
    metrics: MetricsDep,
    records: RecordsDep,
    assistants: AssistantsDep,
    tool_client: ToolClientDep,
    recordings: RecordingsDep,
    traces: TracesDep,
) -> None:
    """Run one call, from its `start` message to its hang-up."""
    if (refusal := admission.refusal) is not None and proxy_retries(websocket):
        # The proxy passes the stream on to another replica: it never reached this one.
        await websocket.send_denial_response(PlainTextResponse(f"busy: {refusal}", 503))
        return
    await websocket.accept()
    accepted_at = time.monotonic()
    url = stream_url(public_base(websocket, settings))
    peer = websocket.client.host if websocket.client else None
    try:
        admitted = admitted_providers(websocket.headers, peer, url, settings)
        call = identify(await read_start(websocket))
        confirm(call, admitted)
    except Unauthorized as e:
        logger.warning(f"Media stream from {peer} refused: {e} (for {url})")
        metrics.signature_failed("media_stream")
        await websocket.close(WS_POLICY_VIOLATION, str(e))
        return
    except TelephonyError as e:
        logger.warning(f"Media stream refused: {e}")
        await websocket.close(WS_UNSUPPORTED_DATA, str(e))
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
            await websocket.close(WS_TRY_AGAIN_LATER, f"busy: {admission.refusal}")
            return
        choice = assistants.for_call(call)
        if assistants.path is not None:  # the record and events name the assistant
            call = replace(call, parameters={**call.parameters, "assistant": choice.assistant.name})
        events = CallEvents()
        recording = records.recording(call)
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
            bot = Bot(call, transport, voice, settings, assistant=choice.assistant, tools=tools)
            recording.follow(bot.aggregators)
            metrics.watch(
                bot.worker, call.direction, accepted_at, recording.add_reply_latency, trace.reply
            )
        except Exception:
            logger.exception("Could not set the call up")
            await finish(EndReason.ERROR)
            await websocket.close(WS_INTERNAL_ERROR, "the server could not set the call up")
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
