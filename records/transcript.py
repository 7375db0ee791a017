"""`TranscriptObserver`: a call's turns, taken as its pipeline writes its LLM context.

The user aggregator broadcasts each user turn as it writes it to the context,
and the assistant aggregator each bot turn once spoken (cut where the caller
interrupted), so the transcript is what the bot heard and what the caller
heard. Keys pressed reach the context as a `DTMF: …` user turn; they are
recorded as `dtmf` turns.

An observer runs on a task of its own, never in the pipeline's frame path,
and only hands each turn on: the database is written elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pipecat.frames.frames import LLMContextAssistantTurnFrame, LLMContextUserTurnFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection

from records.models import TurnRole
from voice.echo import DTMF_PREFIX

TurnSink = Callable[[TurnRole, str, datetime | None], None]


def turn_started(timestamp: str) -> datetime | None:
    """When a turn began, from the aggregators' ISO-8601 timestamp (None if unreadable)."""
    try:
        at = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        return None
    return at if at.tzinfo is not None else None


class TranscriptObserver(BaseObserver):
    """Hands each completed turn of a call to `on_turn(role, text, started_at)`."""

    def __init__(self, on_turn: TurnSink) -> None:
        """Watch a pipeline for turns.

        Args:
            on_turn: Called once per turn; it must not block.
        """
        super().__init__(observe_every_push=False)
        self._on_turn = on_turn

    async def on_push_frame(self, data: FramePushed) -> None:
        """Pass on the turn a context turn frame carries."""
        frame = data.frame
        # Turn frames are broadcast both ways, as two frames: read the downstream one.
        if frame.broadcast_sibling_id is not None and data.direction != FrameDirection.DOWNSTREAM:
            return
        if isinstance(frame, LLMContextUserTurnFrame):
            text = frame.text.strip()
            if text.startswith(DTMF_PREFIX.strip()):
                keys = text.removeprefix(DTMF_PREFIX.strip()).strip()
                self._on_turn(TurnRole.DTMF, keys, turn_started(frame.timestamp))
            else:
                self._on_turn(TurnRole.USER, text, turn_started(frame.timestamp))
        elif isinstance(frame, LLMContextAssistantTurnFrame):
            self._on_turn(TurnRole.ASSISTANT, frame.text.strip(), turn_started(frame.timestamp))
