"""RECORDING=local, end to end: a spoken call's stereo WAV, as the caller heard it, served with
ranges; written as the call goes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from simulator import SimulatedCall
from tests.conftest import OWN_URL, MakeServer, Transcribe
from tests.conversation import hear_reply, speak, words
from tests.recording_helpers import API_KEY, Recording, get, recording_when_kept, write_prompt
from tests.s3_server import S3Account
from tests.server_thread import ServerThread

WELCOME = (
    "Welcome to the Acme support line. All of our agents are busy helping other customers. "
    "Please stay on the line and we will be with you shortly."
)


def recording_server(make_server: MakeServer, tmp_path: Path, **overrides: Any) -> ServerThread:
    """A server recording calls into the test's folder, its API open with `API_KEY`."""
    settings: dict[str, Any] = {
        "recording": "local",
        "recordings_dir": str(tmp_path / "recordings"),
        "prompts_dir": str(tmp_path / "prompts"),
        "dialout_api_key": API_KEY,
        "public_url": OWN_URL,
        "twilio_account_sid": "AC" + "0" * 32,
        "twilio_auth_token": "unused-token",
        "twilio_validate_signatures": False,
        "recording_notice": "",
    }
    return make_server(**(settings | overrides))


@pytest.fixture(params=["local", "s3"])
def bucket(request: pytest.FixtureRequest) -> S3Account | None:
    """Where recordings are kept: the local folder (None), or an S3-compatible store."""
    return request.getfixturevalue("s3") if request.param == "s3" else None


async def test_a_recorded_call_holds_both_sides_as_the_caller_heard_them(
    make_server: MakeServer, tmp_path: Path, transcribe: Transcribe, bucket: S3Account | None
) -> None:
    store = bucket.settings(prefix=tmp_path.name) if bucket else {}
    server = recording_server(make_server, tmp_path, **store)
    await write_prompt(tmp_path / "prompts" / "welcome.wav", WELCOME)
    interruption = await speak("Sorry, I have a question about my order.")
    sentence = await speak("The purple elephant is dancing in the kitchen.")
    # The welcome prompt is the greeting (`greeting_audio`); the caller talks over it.
    async with SimulatedCall(f"{server.url}/?greeting_audio=welcome") as call:
        opened = time.monotonic()
        await call.dial()
        await call.wait_for_bot_audio(timeout=20)
        await call.silence(1.5)
        await hear_reply(call, interruption)
        await hear_reply(call, sentence)
    closed = time.monotonic()
    assert call.clears >= 1  # the provider was told to drop what it had not played

    record = await recording_when_kept(server.url, call.call_sid)
    assert record["recording"]["source"] == "local"
    recording_url = f"{server.url}{record['recording']['url']}"
    status, headers, body = await get(recording_url)
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    wav = Recording.parse(body)
    assert wav.rate == 8000
    assert abs(wav.seconds - (closed - opened)) < 0.5, (wav.seconds, closed - opened)
    assert abs(record["recording"]["duration"] - wav.seconds) < 0.01

    caller_said = words(transcribe(wav.pcm(wav.caller)))
    # Whisper tiny on 8 kHz audio may drop a word; most must be there.
    assert len({"question", "order", "elephant", "kitchen"} & caller_said) >= 3, caller_said
    cut_in = wav.speech_starts(wav.caller)[0]
    welcome = words(transcribe(wav.pcm(wav.bot, 0, cut_in + 0.5)))
    assert "welcome" in welcome, welcome
    replies = words(transcribe(wav.pcm(wav.bot, cut_in + 0.5)))
    assert len({"heard", "question", "elephant", "kitchen"} & replies) >= 3, replies
    assert not {"agents", "shortly"} & replies, replies  # the rest of the welcome never played

    # From the caller's barge-in on, the bot's channel falls silent (what the provider
    # held when told to clear is cut too: see test_recording_tap).
    assert wav.audible(wav.bot, cut_in - 1.0, cut_in)
    assert not wav.audible(wav.bot, cut_in + 0.7, cut_in + 1.8)

    if bucket is not None:  # kept in the bucket, and no longer on the server's disk
        key = f"{tmp_path.name}/{call.call_sid}.wav"
        assert bucket.client().get_object(Bucket=bucket.bucket, Key=key)["Body"].read() == body
        assert not list((tmp_path / "recordings").rglob("*.wav"))

    status, headers, head = await get(recording_url, {"Range": "bytes=0-43"})
    assert status == 206 and headers["Content-Range"] == f"bytes 0-43/{len(body)}"
    assert head == body[:44] and head[:4] == b"RIFF"
    status, headers, middle = await get(recording_url, {"Range": "bytes=10000-19999"})
    assert status == 206 and middle == body[10000:20000]
