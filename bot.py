"""One call's voice bot: the Pipecat pipeline from the caller's audio to the bot's reply.

    transport in → STT → DTMF → user aggregator (Silero VAD) → agent → TTS → prompt player
                                                   → transport out → assistant aggregator

The prompt player plays recorded speech (prompts, cached greetings) as the TTS would.

The whole pipeline runs at the call's wire rate (8 kHz for telephony): every
8↔16 kHz resampling step would add about 60 ms to each reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    EndWorkerFrame,
    Frame,
    FunctionCallResultProperties,
    TTSSpeakFrame,
)
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import FunctionCallParams, LLMService
from pipecat.transports.base_transport import BaseTransport
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from assistants.persona import greeting, system_prompt
from settings import Settings
from telephony import CallInfo
from transfer.handoff import TOOL_NAME as TRANSFER_TOOL
from transfer.handoff import returned_line
from voice import VoiceStack
from voice.callee_first import CalleeFirst
from voice.echo import BOT_ENDED, FAREWELL
from voice.keys import PRESS_KEYS_TOOL, KeyPresser, offers_keys
from voice.pipecat.fastpath import (
    InlineDTMFAggregator,
    TelephonyTransport,
    blind_to_audio,
    bot_audio_end,
    caller_audio_end,
)
from voice.pipecat.turns import PatientSpeechTimeout
from voice.prompts import PromptFrame, PromptPlayer, opening

if TYPE_CHECKING:
    from assistants.model import Assistant
    from tools.calls import CallTools
    from transfer.handoff import Handoff

# After VAD says the caller stopped, how long they may pause before the turn is theirs no more.
USER_PAUSE_SECS = 0.4
# A caller who hangs up mid-sentence: the quiet that ends their words (past VAD's stop),
# and how long those words may take to be transcribed before the call is torn down.
HANG_UP_QUIET_SECS = 0.5
LAST_WORDS_SECS = 5.0

END_CALL_TOOL = FunctionSchema(
    name="end_call",
    description="Say goodbye and hang up, when the caller wants to end the call.",
    properties={},
    required=[],
)


class EndReason(StrEnum):
    """Why a call's pipeline ended."""

    CALLER_HUNG_UP = "caller_hung_up"
    BOT_ENDED = "bot_ended"
    DRAINED = "drained"
    ERROR = "error"
    TRANSFERRED = "transferred"
    ENDED_BY_API = "ended_by_api"


class CallEnded(Exception):
    """The call has ended, or is ending: nothing more can be said in it."""


class Bot:
    """The conversation of one call, from pipeline start to hang-up."""

    def __init__(
        self,
        call: CallInfo,
        transport: BaseTransport,
        voice: VoiceStack,
        settings: Settings,
        observers: Sequence[BaseObserver] = (),
        assistant: Assistant | None = None,
        tools: CallTools | None = None,
        handoff: Handoff | None = None,
        history: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Build the call's pipeline (cheap: the heavy models are shared by `voice`).

        Args:
            call: The call, from its `start` message.
            transport: The call's media transport.
            voice: The process's voice stack.
            settings: Server settings (prompt and greeting defaults, VAD timing).
            observers: Watch the pipeline's frames, off its path (e.g. the call's transcript).
            assistant: Who answers (prompt, greeting, voice, timing); else the settings.
            tools: The assistant's HTTP tools, bound to the call, for an LLM agent.
            handoff: The call's transfers: `transfer_call` is offered when it has targets.
            history: What was said in the call's earlier legs (role, text), for the LLM.
        """
        self.call = call
        self.assistant = assistant
        self.end_reason: EndReason | None = None
        self._settings = settings
        self._greeting = greeting(call, voice, settings, assistant)
        self._voice = voice
        self._notice = settings.recording_notice if settings.records(call.provider) else ""
        if call.leg > 1:  # the caller is back from a transfer that did not go through
            self._greeting = returned_line(call) or self._greeting
            self._notice = ""
        self._tasks: set[asyncio.Task[None]] = set()

        said = [{"role": role, "content": text} for role, text in history]
        context = LLMContext(messages=said)  # type: ignore[arg-type]
        self.context = context
        agent = voice.agent(
            system_prompt(call, settings, assistant), assistant.llm_model if assistant else None
        )
        if isinstance(agent, LLMService):
            schemas = [END_CALL_TOOL, *(tools.schemas() if tools else [])]
            agent.register_function("end_call", self._end_call_tool)
            listed = assistant is not None and "press_keys" in assistant.tools
            if offers_keys(call, settings.press_keys, listed=listed):
                schemas.append(PRESS_KEYS_TOOL)
                agent.register_function("press_keys", KeyPresser(call.sample_rate).handle)
            if handoff is not None and handoff.targets:
                schemas.append(handoff.schema())
                agent.register_function(TRANSFER_TOOL, handoff.tool)
            context.set_tools(ToolsSchema(standard_tools=schemas))
            if tools is not None:
                tools.register(agent)
        self.handoff = handoff
        if handoff is not None:
            handoff.attach(self)
        language = assistant.language if assistant else None
        vad = voice.vad(assistant.vad_stop_secs if assistant else None)
        stt = voice.stt(language)
        pause = USER_PAUSE_SECS
        if assistant is not None and assistant.user_pause_secs is not None:
            pause = assistant.user_pause_secs
        if isinstance(transport, TelephonyTransport):
            transport.follow(vad)
        self._transport = transport
        self._turn_stop = PatientSpeechTimeout(
            vad,
            user_speech_timeout=pause,
            segmented_stt=getattr(stt, "marks_segments", False),
        )
        self._leaving = False
        aggregators = LLMContextAggregatorPair(
            context,
            user_params=LLMUserAggregatorParams(
                vad_analyzer=vad,
                user_turn_strategies=UserTurnStrategies(stop=[self._turn_stop]),
            ),
        )
        self.aggregators = aggregators
        pipeline = Pipeline(
            [
                transport.input(),
                stt,
                InlineDTMFAggregator(timeout=1.0),
                aggregators.user(),
                caller_audio_end(),
                *(
                    [CalleeFirst(self.opening, settings.outbound_greeting_wait_secs)]
                    if call.outbound
                    else []
                ),
                agent,
                voice.tts(assistant.voice if assistant else None, language),
                PromptPlayer(voice.greetings),
                transport.output(),
                bot_audio_end(),
                aggregators.assistant(),
            ]
        )
        self.worker = PipelineWorker(
            pipeline,
            params=PipelineParams(
                audio_in_sample_rate=call.sample_rate, audio_out_sample_rate=call.sample_rate
            ),
            enable_rtvi=False,
            enable_turn_tracking=False,
            idle_timeout_secs=None,
            observers=list(observers),
        )
        blind_to_audio(self.worker)

        @transport.event_handler("on_client_connected")
        async def _greet(_transport: BaseTransport, _ws: object) -> None:
            if not call.outbound:  # on a call we placed, CalleeFirst greets
                await self.worker.queue_frames(await self.opening())

        @transport.event_handler("on_client_disconnected")
        async def _gone(_transport: BaseTransport, _ws: object) -> None:
            self.caller_left()

        @self.worker.event_handler("on_pipeline_finished")
        async def _finished(_worker: PipelineWorker, frame: object) -> None:
            if self.end_reason is None and getattr(frame, "reason", None) == BOT_ENDED:
                self.end_reason = EndReason.BOT_ENDED

    async def run(self) -> EndReason:
        """Run the conversation until the call ends; return why it ended."""
        runner = WorkerRunner(handle_sigint=False, handle_sigterm=False)
        try:
            await runner.add_workers(self.worker)
            await runner.run()
        except Exception:
            logger.exception("The call's pipeline failed")
            self.end_reason = EndReason.ERROR
        finally:
            for task in self._tasks:
                task.cancel()
        return self.end_reason or EndReason.CALLER_HUNG_UP

    async def opening(self) -> list[Frame]:
        """What the bot says first: the recording notice, then the greeting (`opening`)."""
        return await opening(
            self._voice.greetings,
            (
                self._voice.voice_name(self.assistant.voice if self.assistant else None),
                self.call.sample_rate,
            ),
            notice=self._notice,
            greeting=self._greeting,
            greeting_audio=self.call.parameters.get("greeting_audio"),
            prompts_dir=self._settings.prompts_dir,
        )

    async def say(self, text: str) -> None:
        """Speak `text` after what the bot is saying; `CallEnded` once it is over."""
        self._check_live()
        await self.worker.queue_frame(TTSSpeakFrame(text))

    async def play(self, audio: bytes) -> None:
        """Play PCM16 at the call's rate after what the bot says; `CallEnded` once it is over."""
        self._check_live()
        await self.worker.queue_frame(PromptFrame(audio=audio, sample_rate=self.call.sample_rate))

    def _check_live(self) -> None:
        if self.end_reason is not None or self.worker.has_finished():
            raise CallEnded(f"call {self.call.call_sid} has ended")

    def hand_off(self, handed: bool = True) -> None:
        """The call moves on to a transfer (or, refused, stays): how the pipeline's end counts."""
        self.end_reason = EndReason.TRANSFERRED if handed else None

    async def end_by_api(self) -> None:
        """End the call now (`POST /calls/{sid}/hangup`): the stream closes, the call ends.

        Twilio's serializer hangs the call up through the REST API as the pipeline
        stops; Exotel's flow moves on when the stream closes.
        """
        self._check_live()
        self.end_reason = EndReason.ENDED_BY_API
        await self.worker.cancel(reason="ended by the API")

    def caller_left(self) -> None:
        """The caller hung up: stop once their last words are heard, nothing left to say."""
        if self.end_reason is None:
            self.end_reason = EndReason.CALLER_HUNG_UP
        if not self._leaving:
            self._leaving = True
            self.spawn(self._hang_up())

    async def _hang_up(self) -> None:
        # Words said just before the hang-up are still in VAD and STT: let them reach
        # the user aggregator, which writes them to the context (and the transcript)
        # as the pipeline is cancelled.
        try:
            if isinstance(self._transport, TelephonyTransport):
                await self._transport.line_goes_quiet(HANG_UP_QUIET_SECS)
            await self._turn_stop.wait_caller_done(LAST_WORDS_SECS)
        finally:
            await self.worker.cancel(reason="caller hung up")

    async def say_goodbye(self, text: str, reason: EndReason) -> None:
        """Say `text`, let it play out, then end the call (used by drain)."""
        if self.end_reason is None:
            self.end_reason = reason
        await self.worker.queue_frames([TTSSpeakFrame(text), EndWorkerFrame(reason=reason)])

    async def _end_call_tool(self, params: FunctionCallParams) -> None:
        await params.result_callback(
            {"status": "ending call"}, properties=FunctionCallResultProperties(run_llm=False)
        )
        self.end_reason = EndReason.BOT_ENDED
        await params.llm.push_frame(TTSSpeakFrame(FAREWELL))
        await params.llm.push_frame(EndWorkerFrame(reason=BOT_ENDED), FrameDirection.DOWNSTREAM)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` alongside the call; it is cancelled when the call ends."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
