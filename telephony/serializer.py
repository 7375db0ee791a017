"""What every provider's serializer shares: bad frames are logged, never fatal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from loguru import logger
from pipecat.frames.frames import Frame


def parse_message(data: str | bytes) -> dict[str, Any] | None:
    """Decode one websocket frame into a JSON object, or log why it is not one."""
    try:
        message = json.loads(data)
    except (ValueError, TypeError):
        kind = "binary" if isinstance(data, bytes) else "non-JSON"
        logger.warning(f"Ignoring a {kind} frame: {data[:60]!r}")
        return None
    if not isinstance(message, dict):
        logger.warning(f"Ignoring a frame that is not a JSON object: {str(message)[:60]}")
        return None
    return message


class CallEvents:
    """What passes between a call and its serializer besides frames.

    The serializer tells the call that the provider ended it (`stop`) and which
    marks the provider has played; the call tells the serializer that it was
    handed off (transferred), so ending the stream must not hang the call up.

    Attributes:
        caller_left: Set once the provider said the call is over (`stop`): there
            is then nothing left to hang up.
        handed_off: Set when the call moved on elsewhere (a transfer): ending the
            stream must leave the call be.
    """

    def __init__(self) -> None:
        self.caller_left = False
        self.handed_off = False
        self._on_stop: Callable[[], None] | None = None
        self._marks: dict[str, asyncio.Event] = {}

    @property
    def ended_elsewhere(self) -> bool:
        """Whether the call is no longer this stream's to hang up."""
        return self.caller_left or self.handed_off

    def marked(self, name: str) -> None:
        """The provider played everything sent before the mark `name`."""
        if (event := self._marks.get(name)) is not None:
            event.set()

    async def played(self, name: str, within: float) -> bool:
        """Wait until the mark `name` (sent after this call) is played; whether it was in time."""
        event = self._marks.setdefault(name, asyncio.Event())
        try:
            async with asyncio.timeout(within):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._marks.pop(name, None)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Register what to do when the provider sends `stop`."""
        self._on_stop = callback

    def stopped(self) -> None:
        """Record the provider's `stop` and notify the call once."""
        if self.caller_left:
            return
        self.caller_left = True
        if self._on_stop:
            self._on_stop()


class SafeDecoding:
    """A serializer's `deserialize`: one parse per frame, and bad frames logged, never fatal.

    The provider's serializer puts this first among its bases and implements
    `_decode(message)` for one parsed JSON object.
    """

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """Decode one websocket frame; malformed ones are logged and dropped."""
        message = parse_message(data)
        if message is None:
            return None
        try:
            return await self._decode(message)
        except Exception as e:
            logger.warning(f"Ignoring a malformed {message.get('event')!r} message: {e!r}")
            return None

    async def _decode(self, message: dict[str, Any]) -> Frame | None:
        raise NotImplementedError
