"""Read a media stream's opening messages up to its `start`."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from loguru import logger
from starlette.websockets import WebSocket

from telephony.errors import HandshakeError

# Twilio sends `connected` then `start`; Exotel may send `connected` first too.
# A few stray messages are tolerated; anything longer is not a telephony stream.
MAX_MESSAGES_BEFORE_START = 8


async def read_start(websocket: WebSocket, within: float = 10.0) -> dict[str, Any]:
    """Return the stream's `start` message, skipping `connected` and logging junk.

    Args:
        websocket: An accepted websocket.
        within: Seconds to wait for `start` in all.

    Raises:
        HandshakeError: The peer closed, sent media before `start`, sent too much
            junk, or took longer than `timeout`.
    """
    deadline = time.monotonic() + within
    for _ in range(MAX_MESSAGES_BEFORE_START):
        remaining = deadline - time.monotonic()
        try:
            raw = await asyncio.wait_for(websocket.receive(), max(remaining, 0.001))
        except TimeoutError:
            raise HandshakeError(f"no start message within {within:g} s") from None
        if raw["type"] == "websocket.disconnect":
            raise HandshakeError("closed before the start message")
        text = raw.get("text")
        if text is None:
            logger.warning("Ignoring a binary frame before the start message")
            continue
        try:
            message = json.loads(text)
        except ValueError:
            logger.warning(f"Ignoring a non-JSON frame before the start message: {text[:80]!r}")
            continue
        event = message.get("event") if isinstance(message, dict) else None
        if event == "start":
            return message
        if event == "media":
            raise HandshakeError("media arrived before the start message")
        if event != "connected":
            logger.warning(f"Ignoring event {event!r} before the start message")
    raise HandshakeError(f"no start message in the first {MAX_MESSAGES_BEFORE_START} frames")
