"""A call handed to a human: the bot's handoff line, then the call moves on.

    handoff = Handoff(call, settings, events, recording, base, model=None)
    bot = Bot(..., handoff=handoff)        # offers `transfer_call` when targets are set
    await handoff.transfer("sales")        # the API's way in, on the replica holding the call

Twilio: the bot says the handoff line, waits for Twilio to have played it (a
stream mark), then updates the call with `<Dial>` through the REST API; that
ends the stream. When Twilio refuses, the bot says so and the call goes on.
Exotel: no REST transfer on a Voicebot stream; the bot says the line and closes
the stream, and the flow's next applet (e.g. Connect) takes the caller on.
A call held by another replica is transferred by SID alone (`transfer_elsewhere`):
no handoff line, since no one here can speak in it.

Errors: `transfer.errors`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.frames.frames import (
    EndWorkerFrame,
    FunctionCallResultProperties,
    OutputTransportMessageFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.llm_service import FunctionCallParams

from config.transfer import parse_targets
from settings import Settings
from telephony import exotel, twilio
from telephony.call_info import CallInfo
from telephony.serializer import CallEvents
from transfer.errors import NotTransferable, TransferError, TransferRefused, UnknownTarget
from transfer.links import dial_result_url, whisper_url
from transfer.summary import Turns, summarize
from transfer.twilio import caller_id, dial_twiml, update_call

if TYPE_CHECKING:
    from records.recorder import CallRecording


class Bot(Protocol):
    """What a transfer needs of the call's bot (`bot.Bot`)."""

    worker: PipelineWorker
    context: LLMContext
    end_reason: Any

    def hand_off(self, handed: bool = True) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...


TOOL_NAME = "transfer_call"
HANDOFF_LINE = "Please hold while I transfer you to {target}."
REFUSED_LINE = "Sorry, I could not transfer your call just now. How else can I help?"
RETURNED_LINE = "Sorry, {target} could not take your call just now. How else can I help?"
# The handoff line is short; a caller talking over it must not hold the transfer up long.
PLAYOUT_TIMEOUT_SECS = 15.0
_marks = itertools.count(1)
HANDED_OFF = "transferred"  # the reason the pipeline ends with


def targets_for(parameters: Mapping[str, Any], settings: Settings) -> dict[str, str]:
    """The call's targets: its `transfer_targets` parameter, else `TRANSFER_TARGETS`.

    A call's own targets obey `DIALOUT_ALLOWED_PREFIXES` as the settings' do; a
    parameter that does not parse gives the call no targets (and a warning).
    """
    raw = parameters.get("transfer_targets")
    if raw is None:
        return dict(settings.transfer_targets)
    try:
        targets = parse_targets(str(raw))
    except ValueError as e:
        logger.warning(f"The call's transfer_targets are ignored: {e}")
        return {}
    return {name: number for name, number in targets.items() if settings.may_call(number)}


def returned_line(call: CallInfo) -> str | None:
    """What the bot says first on a stream that brings the caller back from a transfer."""
    if not call.control.get("transfer_result"):
        return None
    return RETURNED_LINE.format(target=call.control.get("transfer_target") or "they")


class Handoff:
    """One call's transfers, from the stream that holds it."""

    def __init__(
        self,
        call: CallInfo,
        settings: Settings,
        events: CallEvents,
        recording: CallRecording,
        base: str,
        *,
        model: str | None = None,
    ) -> None:
        """Bind transfers to the call.

        Args:
            call: The call, from its `start` message.
            settings: Targets, whisper, Twilio credentials.
            events: Marks played by the provider; `handed_off` once the call moved on.
            recording: The call's record.
            base: Where Twilio reaches this server (for `<Dial action>` and the whisper).
            model: The assistant's LLM model, for the whisper's summary.
        """
        self.call = call
        # A browser call (the console's) has no phone line to move.
        movable = call.provider in (twilio.NAME, exotel.NAME)
        self.targets = targets_for(call.parameters, settings) if movable else {}
        self._settings = settings
        self._events = events
        self._recording = recording
        self._base = base
        self._model = model
        self._bot: Bot | None = None
        self._under_way = False

    def attach(self, bot: Bot) -> None:
        """The call's bot, which speaks the handoff line and ends with the transfer."""
        self._bot = bot

    def schema(self) -> FunctionSchema:
        """`transfer_call`, its target one of the configured names (never a number)."""
        return FunctionSchema(
            name=TOOL_NAME,
            description="Transfer the caller to a person, when they ask for one or you "
            "cannot help. Choose the target by name.",
            properties={"target": {"type": "string", "enum": sorted(self.targets)}},
            required=["target"],
        )

    async def tool(self, params: FunctionCallParams) -> None:
        """The LLM's `transfer_call`: the transfer runs on once the tool has answered."""
        name = str(params.arguments.get("target", ""))
        if name not in self.targets:
            await params.result_callback({"error": f"no transfer target named {name[:64]!r}"})
            return
        result = {"status": "transferring", "target": name}
        self._recording.tool_called(TOOL_NAME, {"target": name}, result)
        await params.result_callback(result, properties=FunctionCallResultProperties(run_llm=False))
        if self._bot is not None:
            self._bot.spawn(self._transfer_quietly(name))

    async def _transfer_quietly(self, name: str) -> None:
        try:
            await self.transfer(name)
        except TransferRefused:
            pass  # said to the caller, and logged
        except TransferError as e:
            logger.warning(f"Transfer to {name} not made: {e}")

    async def transfer(self, name: str) -> dict[str, str]:
        """Say the handoff line, then move the call to the target `name`.

        Returns:
            The transfer: `target`, `to` and `status` (`dialing`, or `handed_off` on Exotel).

        Raises:
            UnknownTarget: `name` is not one of the call's targets.
            NotTransferable: The call has ended, or its provider cannot transfer.
            TransferRefused: Twilio refused; the bot has told the caller, the call goes on.
        """
        bot = self._bot
        if (number := self.targets.get(name)) is None:
            raise UnknownTarget(f"No transfer target named {name!r} for this call")
        if bot is None or bot.end_reason is not None or bot.worker.has_finished():
            raise NotTransferable(f"Call {self.call.call_sid} has ended")
        if self._under_way:
            raise NotTransferable(f"Call {self.call.call_sid} is already being transferred")
        self._under_way = True
        try:
            return await self._transfer(bot, name, number)
        finally:
            self._under_way = False

    async def _transfer(self, bot: Bot, name: str, number: str) -> dict[str, str]:
        line = TTSSpeakFrame(HANDOFF_LINE.format(target=name))
        details = {"target": name, "to": number}
        if self.call.provider == exotel.NAME:
            bot.hand_off()
            self._recording.transferred(details | {"status": "handed_off"})
            await bot.worker.queue_frames([line, EndWorkerFrame(reason=HANDED_OFF)])
            return details | {"status": "handed_off"}
        if self.call.provider != twilio.NAME:
            raise NotTransferable(f"A {self.call.provider} call cannot be transferred")
        summary = None
        if self._settings.transfer_whisper:
            summary = asyncio.ensure_future(
                summarize(self._settings, self._turns(bot), name, self._model)
            )
        await self._say_and_wait(bot, line)
        if bot.end_reason is not None or self._events.caller_left:
            if summary is not None:
                summary.cancel()
            raise NotTransferable(f"Call {self.call.call_sid} ended during the handoff line")
        whisper = None
        if summary is not None:
            details["summary"] = await summary
            whisper = whisper_url(self._base, self._settings, self.call.call_sid)
        twiml = dial_twiml(
            number,
            caller=caller_id(self.call.direction, self.call.from_number, self.call.to_number),
            action=dial_result_url(self._base, name, self.call.leg + 1),
            whisper_url=whisper,
        )
        self._recording.transferred(details | {"status": "dialing"})
        bot.hand_off()
        self._events.handed_off = True
        try:
            await update_call(self._settings, self.call.call_sid, twiml=twiml)
        except TransferRefused as e:
            bot.hand_off(False)
            self._events.handed_off = False
            self._recording.transfer_ended("refused", {"code": e.code, "reason": e.reason})
            await bot.worker.queue_frame(TTSSpeakFrame(REFUSED_LINE))
            raise
        logger.info(f"Transfer: Twilio dials {name}")
        # Twilio ends the stream itself; ending it here too does not wait on that.
        await bot.worker.queue_frame(EndWorkerFrame(reason=HANDED_OFF))
        return {"target": name, "to": number, "status": "dialing"}

    async def _say_and_wait(self, bot: Bot, line: TTSSpeakFrame) -> None:
        name = f"transfer-{next(_marks)}"
        mark = {"event": "mark", "streamSid": self.call.stream_sid, "mark": {"name": name}}
        played = asyncio.ensure_future(self._events.played(name, PLAYOUT_TIMEOUT_SECS))
        await asyncio.sleep(0)  # the mark is awaited before it can come back
        await bot.worker.queue_frames([line, OutputTransportMessageFrame(message=mark)])
        if not await played:
            logger.warning("Transfer: the handoff line was not confirmed played; going on")

    @staticmethod
    def _turns(bot: Bot) -> Turns:
        turns = []
        for message in bot.context.get_messages():
            role, content = message.get("role"), message.get("content")  # type: ignore[union-attr]
            if role in ("user", "assistant") and isinstance(content, str):
                turns.append((str(role), content))
        return turns
