"""FastSileroVAD hears speech where Pipecat's Silero analyzer does, batched or not."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import onnxruntime
import pytest
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

from simulator import synthesize
from voice.pipecat.offline import load_silero
from voice.pipecat.vad import FastSileroVAD
from voice.silero import MAX_BATCH, RATES, SileroBatcher, silence_state

RATE = 8000
PACKET = 320  # 20 ms of 8 kHz PCM16
WINDOW_SECS = 256 / RATE
Event = tuple[float, VADState]


def silence(secs: float) -> bytes:
    return bytes(2 * int(RATE * secs))


def noise(secs: float, dbfs: float, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, 32768 * 10 ** (dbfs / 20), int(RATE * secs))
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def conversation() -> bytes:
    """Two sentences in silence, one in line noise, one quiet: what a caller sends."""
    first = synthesize("Hello, I would like to book a table for tonight.")
    second = synthesize("Yes, for four people, at eight o'clock please.")
    quiet = (np.frombuffer(second, dtype="<i2") // 8).astype("<i2").tobytes()
    return b"".join(
        [
            silence(1.0),
            first,
            silence(1.5),
            second,
            noise(1.5, -50),
            first,
            noise(1.0, -50, seed=1),
            quiet,
            silence(1.0),
        ]
    )


@pytest.fixture(scope="module")
def session() -> onnxruntime.InferenceSession:
    return load_silero()


class CountingSession:
    """A real Silero session that counts the windows it scores."""

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self.session = session
        self.windows = 0

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> Any:
        self.windows += feeds["input"].shape[0]
        return self.session.run(outputs, feeds)


async def transitions(vad: VADAnalyzer, audio: bytes) -> list[Event]:
    """Where, in audio time, the VAD says speech started (SPEAKING) and stopped (QUIET)."""
    vad.set_sample_rate(RATE)
    events: list[Event] = []
    state = VADState.QUIET
    for offset in range(0, len(audio), PACKET):
        new = await vad.analyze_audio(audio[offset : offset + PACKET])
        if new in (VADState.SPEAKING, VADState.QUIET) and new != state:
            events.append((offset / (2 * RATE), new))
            state = new
    return events


def segments(events: list[Event]) -> list[tuple[float, float]]:
    """(start, stop) of each stretch of speech."""
    starts = [at for at, state in events if state is VADState.SPEAKING]
    stops = [at for at, state in events if state is VADState.QUIET]
    return list(zip(starts, stops, strict=True))


async def test_speech_starts_and_stops_where_pipecats_silero_hears_them(
    conversation: bytes, session: onnxruntime.InferenceSession
) -> None:
    params = VADParams(stop_secs=0.2)
    stock = segments(await transitions(SileroVADAnalyzer(params=params), conversation))
    fast = segments(await transitions(FastSileroVAD(session, params=params), conversation))

    assert len(stock) >= 4, stock  # four sentences at least (a comma may split one)
    for start, stop in stock:
        inside = [(a, b) for a, b in fast if a < stop and b > start]
        assert inside, (start, stop, fast)
        # Speech starts where Silero says it does; for quiet speech in noise, Silero's
        # own start moves by a few windows with what it heard before (its state).
        assert abs(inside[0][0] - start) <= 8 * WINDOW_SECS, (start, stop, inside)
        # It may stop sooner: a window below QUIET_DBFS is not speech, however long
        # Silero's probability lingers over it. In noise the stop moves, like the
        # start, by a few windows with Silero's state.
        assert inside[-1][1] <= stop + 8 * WINDOW_SECS, (stop, inside)
    for a, b in fast:
        assert any(a < stop and b > start for start, stop in stock), ((a, b), stock)
    heard = sum(b - a for a, b in fast)
    assert heard >= 0.7 * sum(b - a for a, b in stock), (fast, stock)


async def test_calls_scored_together_hear_what_each_hears_alone(
    conversation: bytes, session: onnxruntime.InferenceSession
) -> None:
    params = VADParams(stop_secs=0.2)
    # Each call starts at a different point of the conversation.
    audios = [conversation[i * 8000 :] for i in range(4)]
    alone = [await transitions(FastSileroVAD(session, params=params), a) for a in audios]
    together = await asyncio.gather(
        *(transitions(FastSileroVAD(session, params=params), a) for a in audios)
    )
    for solo, batched in zip(alone, together, strict=True):
        assert [s for _, s in batched] == [s for _, s in solo]
        for (at, _), (solo_at, _) in zip(batched, solo, strict=True):
            assert abs(at - solo_at) <= WINDOW_SECS, (batched, solo)


async def test_the_model_is_not_asked_about_silence(session: onnxruntime.InferenceSession) -> None:
    counting = CountingSession(session)
    vad = FastSileroVAD(counting, params=VADParams())  # type: ignore[arg-type]
    counting.windows = 0  # what priming the state for silence took, once per session
    await transitions(vad, silence(3.0))
    assert counting.windows == 0

    speech = synthesize("Are you open on Sundays?")
    events = await transitions(vad, speech + silence(1.0))
    assert [state for _, state in events] == [VADState.SPEAKING, VADState.QUIET]
    assert counting.windows > 0


async def test_calls_that_hang_up_mid_batch_leave_the_others_hearing(
    session: onnxruntime.InferenceSession,
) -> None:
    """More windows in flight than one batch holds, some of them from calls that hung up."""
    window, context = RATES[RATE]
    speech = np.frombuffer(synthesize("Hello there, can you hear me?"), dtype="<i2")
    samples = speech.astype(np.float32) / 32768.0
    calls = MAX_BATCH + 36
    audios = [
        samples[i * 97 : i * 97 + context + window].reshape(1, -1).copy() for i in range(calls)
    ]
    state = silence_state(session, RATE)
    batcher = SileroBatcher(session)
    hung_up = set(range(3, 40, 4))

    async def call(i: int) -> float:
        probability, _ = await batcher.score(audios[i], state, RATE)
        return probability

    tasks = [asyncio.create_task(call(i)) for i in range(40)]
    await asyncio.sleep(0)  # each call's window is queued
    for i in hung_up:
        tasks[i].cancel()
    await asyncio.sleep(0)  # their futures are cancelled too
    tasks += [asyncio.create_task(call(i)) for i in range(40, calls)]
    _, pending = await asyncio.wait(tasks, timeout=5)
    assert not pending, f"{len(pending)} live calls never scored"

    alone = SileroBatcher(session)
    for i, task in enumerate(tasks):
        if i in hung_up:
            assert task.cancelled()
            continue
        solo, _ = await alone.score(audios[i], state, RATE, urgent=True)
        assert task.result() == pytest.approx(solo, abs=1e-4), i
