"""A live call, controlled over HTTP: play a prompt, say a text, and the answers to bad
requests; and each greeting synthesised once."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from simulator import SimulatedCall
from tests.conftest import OWN_URL, MakeServer, Transcribe
from tests.conversation import QUIET, hear_greeting, words
from tests.recording_helpers import API_KEY, get, post, write_prompt
from tests.records_helpers import reading, record_when
from tests.server_thread import ServerThread
from tests.test_dialin import post_webhook


def control_server(make_server: MakeServer, tmp_path: Path, **overrides: Any) -> ServerThread:
    return make_server(
        prompts_dir=str(tmp_path / "prompts"),
        dialout_api_key=API_KEY,
        public_url=OWN_URL,
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="unused-token",
        twilio_validate_signatures=False,
        **overrides,
    )


async def hear_next(call: SimulatedCall) -> bytes:
    """What the caller hears from now until the bot is quiet again."""
    before = len(call.heard)
    await call.wait_for_bot_audio(after=time.monotonic(), timeout=20)
    await call.wait_for_bot_quiet(QUIET)
    return call.heard[before:]


async def test_a_prompt_played_and_a_text_said_in_a_live_call(
    make_server: MakeServer, tmp_path: Path, transcribe: Transcribe
) -> None:
    server = control_server(make_server, tmp_path)
    await write_prompt(tmp_path / "prompts" / "parcel.wav", "Your parcel arrives on Tuesday.")
    (tmp_path / "secrets.wav").write_bytes(b"RIFF")
    async with SimulatedCall(server.url) as call:
        await call.dial()
        await hear_greeting(call)
        calls = f"{server.url}/calls/{call.call_sid}"

        assert await post(f"{calls}/play", {"prompt": "parcel"}) == (
            202,
            {"call_sid": call.call_sid, "status": "queued"},
        )
        played = words(transcribe(await hear_next(call)))
        assert {"parcel", "tuesday"} <= played, played

        status, _ = await post(f"{calls}/say", {"text": "Your table for seven is booked."})
        assert status == 202
        said = words(transcribe(await hear_next(call)))
        assert {"table", "seven", "booked"} <= said, said

        for name in ("../secrets", "prompts/parcel", "/etc/passwd", "..", "missing"):
            status, answer = await post(f"{calls}/play", {"prompt": name})
            assert status == 422, (name, answer)
            assert "PROMPTS_DIR" in answer["detail"], answer
        status, _ = await post(f"{calls}/say", {"text": ""})
        assert status == 422
    # What was said is on the transcript, as the bot's.
    async with reading(f"sqlite:///{tmp_path / 'switchboard.db'}") as store:
        record = await record_when(store, call.call_sid)
    assert any("table for seven" in t.text for t in record.turns if t.role == "assistant")

    status, answer = await post(f"{calls}/say", {"text": "Still there?"})
    assert (status, answer["detail"]) == (409, f"Call {call.call_sid} has ended")


async def test_calls_that_are_unknown_or_elsewhere_are_refused_plainly(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = control_server(make_server, tmp_path)
    unknown = "CA" + secrets.token_hex(16)
    status, answer = await post(f"{server.url}/calls/{unknown}/play", {"prompt": "parcel"})
    assert (status, answer["detail"]) == (404, f"No call {unknown} is on record")
    status, _, body = await get(f"{server.url}/calls/{unknown}/recording")
    assert status == 404 and b"is on record" in body
    # The webhook rang here, but the call's stream runs on another replica.
    elsewhere = "CA" + secrets.token_hex(16)
    form = {"CallSid": elsewhere, "From": "+15550001111", "To": "+15550002222"}
    assert (await post_webhook(f"{server.url}/", form))[0] == 200
    async with reading(f"sqlite:///{tmp_path / 'switchboard.db'}") as store:
        await record_when(store, elsewhere, ready="turns", turns=0)
    status, answer = await post(f"{server.url}/calls/{elsewhere}/say", {"text": "Hello"})
    assert status == 409 and "not running in this process" in answer["detail"], answer
    assert "without PostgreSQL (DATABASE_URL)" in answer["detail"], answer
    status, _, body = await get(f"{server.url}/calls/{elsewhere}/recording")
    assert status == 404 and b"has no recording" in body


class CountingVoice:
    """A Piper voice that notes what it is asked to say."""

    def __init__(self, voice: Any) -> None:
        self._voice = voice
        self.said: list[str] = []

    def synthesize(self, text: str, *args: Any, **kwargs: Any) -> Any:
        self.said.append(text)
        return self._voice.synthesize(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._voice, name)


async def test_a_greeting_is_synthesised_once_and_then_played_from_the_cache(
    make_server: MakeServer, tmp_path: Path, transcribe: Transcribe
) -> None:
    server = control_server(make_server, tmp_path)
    voice = CountingVoice(server.app.state.voice.piper)
    server.app.state.voice.piper = voice
    greeting = f"Good morning from the {secrets.choice(['red', 'blue', 'green'])} office."
    url = f"{server.url}/?greeting={greeting.replace(' ', '%20')}"
    heard = []
    for _ in range(2):
        async with SimulatedCall(url) as call:
            await call.dial()
            heard.append(words(transcribe(await hear_greeting(call))))
    assert all({"morning", "office"} <= said for said in heard), heard
    assert len([text for text in voice.said if "morning" in text]) == 1, voice.said
    async with reading(f"sqlite:///{tmp_path / 'switchboard.db'}") as store:
        record = await record_when(store, call.call_sid)
    assert [t.text for t in record.turns if t.role == "assistant"] == [greeting]
