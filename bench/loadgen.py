"""Load generator: N concurrent simulated Twilio calls against one server.

Each call speaks Twilio's Media Streams protocol over a real websocket to
127.0.0.1, sends a 20 ms media frame on an absolute clock (silence, or the
caller's recorded speech), models Twilio's playout buffer for the bot's audio
(marks are echoed when played, `clear` empties it), and follows a script:

    wait for the greeting → let it play → pause → speak → wait for the reply → …

It records per call: greeting latency (`start` sent → first audible bot audio),
each reply's latency (last frame of the utterance → first audible bot audio),
how late the bot's audio ran against real time within each reply, and the
generator's own clock lag (a late generator would invalidate the run).

The calls are lean on purpose (one task pair per call, no per-frame decoding
except while waiting for the bot to speak) so that one core drives a hundred
calls. Message building and the G.711 codec are the simulator's.

    python -m bench.loadgen --url ws://127.0.0.1:8100/ws --calls 20 \\
        --duration 20 --speech caller.wav --out step.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from simulator import (
    FRAME_SECONDS,
    SAMPLE_RATE,
    TwilioMediaStream,
    is_audible,
    new_sid,
    read_wav,
    ulaw_to_pcm,
)

# How long a call waits for the bot to answer before counting the reply as missed.
REPLY_TIMEOUT = 5.0
GREETING_TIMEOUT = 10.0
# The caller pauses this long (plus up to as much again, at random) after the
# bot's audio has played out, before speaking.
THINK_SECS = 0.6


class Phase(Enum):
    GREETING = "greeting"  # waiting for the bot's first audio
    LISTENING = "listening"  # the bot's audio plays out, then the caller thinks
    SPEAKING = "speaking"
    WAITING = "waiting"  # utterance sent, waiting for the reply


@dataclass
class CallResult:
    """What one call measured; times in milliseconds."""

    greeting_ms: float | None = None
    responses_ms: list[float] = field(default_factory=list)
    missed: int = 0
    lateness_ms: list[float] = field(default_factory=list)
    greeting_lateness_ms: float = 0.0
    clears: int = 0
    marks: int = 0
    max_send_lag_ms: float = 0.0
    frames_sent: int = 0
    error: str | None = None


class Call:
    """One simulated call: a clock task that sends, a receiver that listens."""

    def __init__(self, url: str, speech: list[str], duration: float, rng: random.Random) -> None:
        self.url = url
        self.speech = speech
        self.duration = duration
        self.rng = rng
        self.result = CallResult()
        self.wire = TwilioMediaStream(
            account_sid=new_sid("AC"), call_sid=new_sid("CA"), stream_sid=new_sid("MZ")
        )
        self.phase = Phase.GREETING
        self.playout_end = 0.0  # when the bot audio received so far ends playing
        self.speak_at = math.inf
        self.utterance_end = 0.0
        self.reply_start = 0.0
        self.reply_samples = 0
        self.lateness: list[float] = []  # where the current reply's lateness goes
        self._greeting_lateness: list[float] = []
        self.next_frame = 0
        self._ws: ClientConnection | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> CallResult:
        """Place the call, follow the script for `duration`, hang up."""
        try:
            async with connect(
                self.url,
                compression=None,
                max_size=None,
                proxy=None,
                ping_interval=None,
                user_agent_header="Twilio.TmeWs/1.0",
                open_timeout=30,
            ) as ws:
                self._ws = ws
                await ws.send(json.dumps(self.wire.connected()))
                params = {"from_number": "+15550001111", "to_number": "+15550002222"}
                await ws.send(json.dumps(self.wire.start(params)))
                started = time.monotonic()
                self.playout_end = started
                receiver = asyncio.create_task(self._receive(ws, started))
                try:
                    await self._clock(ws, started)
                    await ws.send(json.dumps(self.wire.stop()))
                finally:
                    receiver.cancel()
        except (OSError, WebSocketException, TimeoutError) as e:
            self.result.error = f"{type(e).__name__}: {e}"
        if self.phase is Phase.GREETING and self.result.error is None:
            self.result.error = "no greeting"
        self.result.greeting_lateness_ms = max(self._greeting_lateness, default=0.0)
        return self.result

    async def _clock(self, ws: ClientConnection, started: float) -> None:
        # Frames go out on an absolute 20 ms grid: a late tick is caught up, not drifted.
        silence = self.wire.silence_frame
        end = started + self.duration
        chunk = 0
        lag = 0.0
        while True:
            due = started + chunk * FRAME_SECONDS
            now = time.monotonic()
            if now >= end and self.phase is not Phase.SPEAKING:
                break
            lag = max(lag, now - due)
            payload = self._next_payload(now, silence)
            try:
                await ws.send(
                    json.dumps(self.wire.media(payload, chunk=chunk + 1, timestamp_ms=chunk * 20))
                )
            except ConnectionClosed:
                break
            chunk += 1
            if self.phase is Phase.SPEAKING and self.next_frame == len(self.speech):
                self.phase = Phase.WAITING
                self.utterance_end = time.monotonic()
                self.next_frame = 0
            await asyncio.sleep(max(0.0, started + chunk * FRAME_SECONDS - time.monotonic()))
        self.result.frames_sent = chunk
        self.result.max_send_lag_ms = lag * 1000

    def _next_payload(self, now: float, silence: str) -> str:
        if self.phase is Phase.GREETING and now - self.playout_end > GREETING_TIMEOUT:
            self.playout_end = now  # never greeted: talk anyway, the error is recorded
            self._listen(now)
        elif self.phase is Phase.LISTENING and now >= self.speak_at:
            self.phase = Phase.SPEAKING
        elif self.phase is Phase.WAITING and now - self.utterance_end > REPLY_TIMEOUT:
            self.result.missed += 1
            self._listen(now)
        if self.phase is Phase.SPEAKING:
            payload = self.speech[self.next_frame]
            self.next_frame += 1
            return payload
        return silence

    def _listen(self, now: float) -> None:
        self.phase = Phase.LISTENING
        self.speak_at = now + THINK_SECS

    async def _receive(self, ws: ClientConnection, started: float) -> None:
        try:
            async for raw in ws:
                self._handle(time.monotonic(), raw, started)
        except ConnectionClosed:
            pass

    def _handle(self, now: float, raw: str | bytes, started: float) -> None:
        message: dict[str, Any] = json.loads(raw)
        event = message.get("event")
        if event == "media":
            payload = message["media"]["payload"]
            samples = len(payload) * 3 // 4 - payload.count("=", -2)
            if self.phase in (Phase.GREETING, Phase.WAITING):
                if not _audible(payload):
                    return  # leading silence: not yet the bot speaking
                if self.phase is Phase.GREETING:
                    self.result.greeting_ms = (now - started) * 1000
                    self.lateness = self._greeting_lateness  # judged apart: start-up
                else:
                    self.result.responses_ms.append((now - self.utterance_end) * 1000)
                    self.lateness = self.result.lateness_ms
                self.phase = Phase.LISTENING
                self.reply_start, self.reply_samples = now, 0
                self.lateness.append(0.0)
            elif self.reply_samples and self.lateness:
                late = (now - (self.reply_start + self.reply_samples / SAMPLE_RATE)) * 1000
                self.lateness[-1] = max(self.lateness[-1], late)
            self.reply_samples += samples
            self.playout_end = max(self.playout_end, now) + samples / SAMPLE_RATE
            if self.phase is Phase.LISTENING:
                think = THINK_SECS * (1 + self.rng.random())
                self.speak_at = self.playout_end + think
        elif event == "mark":
            self.result.marks += 1
            name = message.get("mark", {}).get("name", "")
            delay = max(0.0, self.playout_end - now)
            self._spawn(self._echo_mark(name, delay))
        elif event == "clear":
            self.result.clears += 1
            self.playout_end = now

    async def _echo_mark(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(json.dumps(self.wire.mark(name)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _audible(payload: str) -> bool:
    return is_audible(ulaw_to_pcm(base64.b64decode(payload)))


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


async def run_calls(
    url: str, calls: int, duration: float, ramp: float, speech_pcm: bytes, seed: int = 1
) -> dict[str, Any]:
    """Run `calls` calls, started evenly over `ramp` seconds, each `duration` long."""
    wire = TwilioMediaStream(account_sid="AC", call_sid="CA", stream_sid="MZ")
    speech = wire.encode_frames(speech_pcm)
    rng = random.Random(seed)

    async def one(index: int) -> CallResult:
        await asyncio.sleep(ramp * index / max(calls, 1))
        return await Call(url, speech, duration, random.Random(rng.random())).run()

    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(calls)))
    wall = time.monotonic() - wall_before
    return {
        "calls": calls,
        "duration": duration,
        "ramp": ramp,
        "wall_secs": wall,
        "loadgen_cpu": (cpu_seconds() - cpu_before) / wall,
        "results": [asdict(r) for r in results],
    }


def main(argv: list[str] | None = None) -> None:
    """Run one load step and write its results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the media stream, ws://127.0.0.1:PORT/ws")
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds each call lasts")
    parser.add_argument("--ramp", type=float, default=None, help="seconds to start all calls")
    parser.add_argument("--speech", required=True, help="WAV of what each caller says")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if not args.url.startswith("ws://127.0.0.1:"):
        parser.error("the load generator only calls servers on 127.0.0.1")
    ramp = args.ramp if args.ramp is not None else min(5.0, 0.1 * args.calls)
    speech = read_wav(args.speech)
    # uvloop: the generator's own overhead per frame is what limits how many calls it drives.
    report = uvloop.run(run_calls(args.url, args.calls, args.duration, ramp, speech, args.seed))
    Path(args.out).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
