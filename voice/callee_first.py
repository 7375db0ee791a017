"""On a call we placed, the callee speaks first; the bot's greeting answers them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    LLMContextFrame,
    StartFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class CalleeFirst(FrameProcessor):
    """On a call we placed, the callee speaks first ("Hello?"); the greeting answers them.

    Sits between the user aggregator and the agent. The greeting is said when the
    callee's first turn ends (that turn goes no further), or after `wait_secs` if
    they stay silent; if they are mid-sentence then, once they stop.
    """

    def __init__(self, opening: Callable[[], Awaitable[list[Frame]]], wait_secs: float) -> None:
        """Greet with `opening()` after the callee's first turn, or `wait_secs` of silence."""
        super().__init__()
        self._opening = opening
        self._wait_secs = wait_secs
        self._greeted = self._overdue = self._speaking = False
        self._turn_before_greeting = False  # its context frame is answered by the greeting
        self._timer: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Hold back the callee's first turn and greet in its place."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self._timer = self.create_task(self._greet_unless_speaking())
        elif isinstance(frame, (EndFrame, CancelFrame)) and self._timer is not None:
            await self.cancel_task(self._timer)
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._speaking = True
            self._turn_before_greeting = not self._greeted
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._speaking = False
            if self._overdue:
                await self._greet()
        elif isinstance(frame, LLMContextFrame) and (
            not self._greeted or self._turn_before_greeting
        ):
            self._turn_before_greeting = False
            await self._greet()
            return
        await self.push_frame(frame, direction)

    async def _greet_unless_speaking(self) -> None:
        await asyncio.sleep(self._wait_secs)
        self._overdue = True
        if not self._speaking:
            await self._greet()

    async def _greet(self) -> None:
        if not self._greeted:
            self._greeted = True
            for frame in await self._opening():
                await self.push_frame(frame)
