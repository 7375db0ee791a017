"""The baseline: a minimal Twilio server written the way Pipecat's own examples do it.

It follows pipecat-examples' `twilio-chatbot` bot: FastAPI, `parse_telephony_websocket`,
`TwilioFrameSerializer`, `FastAPIWebsocketTransport`, a `SileroVADAnalyzer()` per
call in `LLMUserAggregatorParams`, the default user turn strategies, metrics on,
`PipelineWorker` + `WorkerRunner(force_gc=True)`, greeting by `LLMRunFrame`. Only
the services differ: the same instant bench services Switchboard runs with, so
the comparison is framework against framework. Auto hang-up is off (no Twilio
account on loopback), as is the example's call recording.

`--tuned` is the same server with every switch Switchboard also turns off: RTVI,
turn tracking, the idle timeout (each an observer of every frame), metrics, and the
forced garbage collection after each call (`PipelineWorker(enable_rtvi=False,
enable_turn_tracking=False, idle_timeout_secs=None)`, metrics off,
`WorkerRunner(force_gc=False)`). It then runs the observers Switchboard's
worker has of Pipecat's own: none.
Against it, Switchboard's ratio is what its fast path earns, beyond the switches.

    python -m bench.baseline --port 8101 --clip bench/results/clip.wav
    python -m bench.baseline --port 8101 --clip bench/results/clip.wav --pause 0.4 --tuned
"""

from __future__ import annotations

import argparse
import sys

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import IDLE_TIMEOUT_SECS, PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from bench.services import BenchLLM, BenchSTT, BenchTTS, read_clip


async def run_bot(
    transport: BaseTransport, clip: bytes, pause: float | None, tuned: bool = False
) -> None:
    """One call's pipeline, as in the example's `run_bot`.

    With `pause`, the user turn ends `pause` seconds after VAD's stop, as in
    Switchboard, instead of by the default Smart Turn model. With `tuned`, the
    switches Switchboard turns off are off here too.
    """
    stt = BenchSTT()
    llm = BenchLLM()
    tts = BenchTTS(clip)
    context = LLMContext()
    strategies = None  # the default: Smart Turn v3 ends the turn
    if pause is not None:
        strategies = UserTurnStrategies(
            stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=pause)]
        )
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(), user_turn_strategies=strategies
        ),
    )
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            user_aggregator,
            llm,
            tts,
            transport.output(),
            assistant_aggregator,
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=8000,
            audio_out_sample_rate=8000,
            enable_metrics=not tuned,
            enable_usage_metrics=not tuned,
        ),
        enable_rtvi=not tuned,
        enable_turn_tracking=not tuned,
        idle_timeout_secs=None if tuned else IDLE_TIMEOUT_SECS,
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(_transport: BaseTransport, _client: object) -> None:
        context.add_message({"role": "user", "content": "Please introduce yourself to the user."})
        await worker.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport: BaseTransport, _client: object) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False, force_gc=not tuned)
    await runner.add_workers(worker)
    await runner.run()


def create_app(clip: bytes, pause: float | None = None, tuned: bool = False) -> FastAPI:
    """The example's server: one websocket endpoint that runs a bot per call."""
    app = FastAPI()

    @app.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        _, call_data = await parse_telephony_websocket(websocket)
        serializer = TwilioFrameSerializer(
            stream_sid=call_data["stream_id"],
            call_sid=call_data["call_id"],
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                serializer=serializer,
            ),
        )
        await run_bot(transport, clip, pause, tuned)

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the baseline on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clip", required=True, help="8 kHz mono WAV the bench TTS plays")
    parser.add_argument("--pause", type=float, help="end turns this long after VAD's stop")
    parser.add_argument("--tuned", action="store_true", help="RTVI, turn tracking, metrics off")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level=args.log_level)
    app = create_app(read_clip(args.clip), args.pause, args.tuned)
    uvicorn.run(app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
