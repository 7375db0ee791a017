"""What the recording tests share: fetching a call's recording as an API client would, and
reading its two channels."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np

from simulator import resample_pcm, synthesize

API_KEY = "recording-test-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# Bot or caller audio quieter than this peak is no speech.
AUDIBLE = 300


@dataclass
class Recording:
    """A stereo WAV: the caller's channel (left) and the bot's (right), 16-bit."""

    rate: int
    caller: np.ndarray
    bot: np.ndarray

    @classmethod
    def parse(cls, data: bytes) -> Recording:
        with wave.open(io.BytesIO(data)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth()) == (2, 2)
            rate = wav.getframerate()
            frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        stereo = frames.reshape(-1, 2)
        return cls(rate, stereo[:, 0].copy(), stereo[:, 1].copy())

    @property
    def seconds(self) -> float:
        return len(self.caller) / self.rate

    def pcm(self, channel: np.ndarray, start: float = 0, end: float | None = None) -> bytes:
        """A stretch of one channel as PCM16 bytes (to transcribe)."""
        stop = None if end is None else int(end * self.rate)
        return channel[int(start * self.rate) : stop].astype("<i2").tobytes()

    def audible(self, channel: np.ndarray, start: float, end: float) -> bool:
        """Whether `channel` holds speech between `start` and `end` seconds."""
        part = channel[int(start * self.rate) : int(end * self.rate)]
        return bool(part.size) and int(np.abs(part.astype(np.int32)).max()) > AUDIBLE

    def speech_starts(
        self, channel: np.ndarray, after: float = 0, quiet: float = 0.3
    ) -> list[float]:
        """When each stretch of speech in `channel` starts (after `quiet` s of silence)."""
        window = int(0.02 * self.rate)
        loud = [
            self.audible(channel, i / self.rate, (i + window) / self.rate)
            for i in range(0, len(channel) - window, window)
        ]
        starts, silent_for = [], quiet
        for index, is_loud in enumerate(loud):
            at = index * window / self.rate
            if is_loud and silent_for >= quiet and at >= after:
                starts.append(at)
            silent_for = 0 if is_loud else silent_for + window / self.rate
        return starts


PROMPT_RATE = 16000  # not the call's: the server converts prompts to the wire's rate


async def write_prompt(path: Any, text: str) -> bytes:
    """Write `text`, spoken, as a 16 kHz WAV prompt at `path`; the speech at 8 kHz."""
    speech = await asyncio.to_thread(synthesize, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(PROMPT_RATE)
        wav.writeframes(resample_pcm(speech, 8000, PROMPT_RATE))
    return speech


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET `url` with the API key; status, headers and body."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={**AUTH, **(headers or {})}) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST JSON to `url` with the API key; status and the JSON answer."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=AUTH) as response,
    ):
        return response.status, await response.json(content_type=None)


async def recording_when_kept(server_url: str, call_sid: str, within: float = 30) -> dict[str, Any]:
    """Poll `GET /calls/{sid}` until its recording has a duration; the record."""
    deadline = time.monotonic() + within
    while True:
        status, _, body = await get(f"{server_url}/calls/{call_sid}")
        if status == 200:
            import json

            record = json.loads(body)
            if (record.get("recording") or {}).get("duration") is not None:
                return dict(record)
        if time.monotonic() > deadline:
            raise AssertionError(f"no finished recording for {call_sid}: {status} {body[:300]!r}")
        await asyncio.sleep(0.2)
