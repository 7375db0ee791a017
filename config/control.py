"""In-call control settings, mixed into `settings.Settings` (one class, read and validated there).

    PRESS_KEYS=outbound    # the LLM's press_keys tool: off, outbound (calls we placed), all

A call's own `press_keys` parameter (`true` or `false`, set by whoever built the
call's TwiML, stream URL or dial-out request) overrides it for that call.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class PressKeys(StrEnum):
    """Which calls' LLM may press keys (send DTMF tones into the call)."""

    OFF = "off"
    OUTBOUND = "outbound"
    ALL = "all"


class ControlSettings(BaseModel):
    """What the bot may do in a live call beyond talking."""

    press_keys: PressKeys = PressKeys.OUTBOUND
