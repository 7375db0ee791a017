"""Keys the bot presses: DTMF tones, synthesised as audio the other side hears.

    keys_audio("1w2#", 8000)   # PCM16: 1, half a second's wait, 2, #

    presser = KeyPresser(call.sample_rate)     # the LLM's `press_keys` tool
    schemas.append(PRESS_KEYS_TOOL); llm.register_function("press_keys", presser.handle)

A phone menu listens for in-band tones (ITU-T Q.23): two sines, one from the
row and one from the column of the key. Each key is a `TONE_SECS` tone and a
`GAP_SECS` silence, well past the 40 ms each that Q.24 asks receivers to take;
`w` waits half a second, as Twilio's `sendDigits` does.

The tones are played as the bot's speech (`PromptFrame`): in order with what
it says, at the call's wire rate, through the same output (and recording).
They are cut, as speech is, when the other side talks over them.
"""

from __future__ import annotations

import re

import numpy as np
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.frames.frames import FunctionCallResultProperties
from pipecat.services.llm_service import FunctionCallParams

from config.control import PressKeys
from telephony.call_info import CallInfo
from voice.prompts import PromptFrame

KEYS = re.compile(r"[0-9*#w]{1,32}")
ROWS = (697, 770, 852, 941)
COLUMNS = (1209, 1336, 1477)
LAYOUT = ("123", "456", "789", "*0#")
FREQUENCIES: dict[str, tuple[int, int]] = {
    key: (ROWS[row], COLUMNS[column])
    for row, keys in enumerate(LAYOUT)
    for column, key in enumerate(keys)
}
TONE_SECS = 0.15
GAP_SECS = 0.1
WAIT_SECS = 0.5
# Each sine at about -9 dBFS: loud enough for any receiver, well clear of clipping in μ-law.
AMPLITUDE = 0.35 * 32767


def keys_audio(keys: str, sample_rate: int) -> bytes:
    """The tones of `keys` (digits, `*`, `#`, and `w` for a half-second wait), as PCM16.

    Raises:
        ValueError: A character that is not a key, or more than 32 of them.
    """
    if not KEYS.fullmatch(keys):
        raise ValueError(f"{keys[:40]!r}: keys are 0-9, * and #, and w to wait (at most 32)")
    gap = np.zeros(round(GAP_SECS * sample_rate))
    parts = []
    for key in keys:
        if key == "w":
            parts.append(np.zeros(round(WAIT_SECS * sample_rate)))
            continue
        t = np.arange(round(TONE_SECS * sample_rate)) / sample_rate
        low, high = FREQUENCIES[key]
        tone = AMPLITUDE * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
        ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)  # no clicks at the edges
        parts += [tone * ramp, gap]
    return np.concatenate(parts).astype("<i2").tobytes()


PRESS_KEYS_TOOL = FunctionSchema(
    name="press_keys",
    description=(
        "Press keys on the phone's keypad, as tones the other side hears: to choose in "
        "a phone menu or enter a number. Keys: 0-9, * and #; w waits half a second."
    ),
    properties={
        "keys": {
            "type": "string",
            "pattern": KEYS.pattern,
            "description": "The keys in order, e.g. 1 or 12# or 1w2",
        }
    },
    required=["keys"],
)


def offers_keys(call: CallInfo, setting: PressKeys, *, listed: bool = False) -> bool:
    """Whether the call's LLM gets `press_keys`.

    The call's `press_keys` parameter (`true`/`false`) decides; else the
    assistant listing the tool (`listed`), or `setting` (PRESS_KEYS) for the call.
    """
    chosen = call.parameters.get("press_keys", "").strip().lower()
    if chosen in ("true", "false"):
        return chosen == "true"
    if listed or setting is PressKeys.ALL:
        return True
    return setting is PressKeys.OUTBOUND and call.outbound


class KeyPresser:
    """The `press_keys` tool of one call: tones queued behind what the bot is saying."""

    def __init__(self, sample_rate: int) -> None:
        """Press keys into a call whose audio runs at `sample_rate`."""
        self._sample_rate = sample_rate

    async def handle(self, params: FunctionCallParams) -> None:
        """Queue the tones of the `keys` argument, or tell the LLM what is wrong with it."""
        keys = params.arguments.get("keys")
        try:
            if not isinstance(keys, str):
                raise ValueError('keys must be a string, e.g. "12#"')
            audio = keys_audio(keys, self._sample_rate)
        except ValueError as e:
            await params.result_callback({"error": str(e)})  # the LLM may try again
            return
        await params.llm.push_frame(PromptFrame(audio=audio, sample_rate=self._sample_rate))
        # The menu speaks next: the LLM answers that, not the key press.
        await params.result_callback(
            {"pressed": keys}, properties=FunctionCallResultProperties(run_llm=False)
        )
