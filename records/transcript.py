"""`Transcript`: a call's turns, taken as its aggregators write them to the LLM context.

The user aggregator announces each user turn as it writes it to the context
(`on_user_turn_message_added`), and the assistant aggregator each bot turn once
spoken (`on_assistant_turn_stopped`, cut where the caller interrupted), so the
transcript is what the bot heard and what the caller heard. Keys pressed reach
the context as a `DTMF: …` user turn; they are recorded as `dtmf` turns.

Why events and not an observer: at a hang-up the aggregators write the turn in
progress as the pipeline is cancelled, and Pipecat cancels observers' tasks
then, with that turn still queued. Event handlers run on tasks that the
pipeline waits for instead. The handlers only hand each turn on: the database
is written elsewhere, off the pipeline's path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pipecat.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    LLMContextAggregatorPair,
    UserTurnMessageAddedMessage,
)
from pipecat.processors.frame_processor import FrameProcessor

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


class Transcript:
    """Hands each completed turn of a call to `on_turn(role, text, started_at)`."""

    def __init__(self, on_turn: TurnSink) -> None:
        """Collect turns for `on_turn`, which is called once per turn and must not block."""
        self._on_turn = on_turn

    def follow(self, aggregators: LLMContextAggregatorPair) -> None:
        """Take the turns the call's context aggregators write."""
        aggregators.user().add_event_handler("on_user_turn_message_added", self._user_turn)
        aggregators.assistant().add_event_handler("on_assistant_turn_stopped", self._bot_turn)

    def _user_turn(self, _aggregator: FrameProcessor, message: UserTurnMessageAddedMessage) -> None:
        text = message.content.strip()
        started = turn_started(message.timestamp)
        if text.startswith(DTMF_PREFIX.strip()):
            self._on_turn(TurnRole.DTMF, text.removeprefix(DTMF_PREFIX.strip()).strip(), started)
        else:
            self._on_turn(TurnRole.USER, text, started)

    def _bot_turn(self, _aggregator: FrameProcessor, message: AssistantTurnStoppedMessage) -> None:
        self._on_turn(TurnRole.ASSISTANT, message.content.strip(), turn_started(message.timestamp))
