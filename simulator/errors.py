"""Errors the simulator raises while it places and holds a call.

SimulatorError
├── WebhookError    the voice webhook answered with an HTTP error status
├── CallRejected    the TwiML rejected the call, or connected no Stream
├── StreamRejected  the server refused the Media Stream websocket upgrade
├── CallEnded       the call ended before what was being waited for happened
└── DialoutError    POST /dialout failed, or its call never reached the simulator
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class of the simulator's errors."""


class WebhookError(SimulatorError):
    """The voice webhook answered with an HTTP error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"voice webhook answered HTTP {status}")
        self.status = status
        self.body = body


class CallRejected(SimulatorError):
    """The TwiML rejected the call, or did not connect a Stream."""

    def __init__(self, reason: str, twiml: str) -> None:
        super().__init__(f"call rejected: {reason}")
        self.reason = reason
        self.twiml = twiml


class StreamRejected(SimulatorError):
    """The server refused the Media Stream websocket upgrade."""

    def __init__(self, status: int) -> None:
        super().__init__(f"media stream upgrade refused with HTTP {status}")
        self.status = status


class CallEnded(SimulatorError):
    """The call ended before what was being waited for happened."""


class DialoutError(SimulatorError):
    """``POST /dialout`` failed, or the call it placed never reached the simulator."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
