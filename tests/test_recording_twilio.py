"""RECORDING=twilio: the recording request when a stream starts (at creation for dial-out),
the notice before the greeting, the signed callback on the record, and the WAV relayed."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from twilio.request_validator import RequestValidator

from simulator import SimulatedCall
from tests.conftest import TEST_AUTH_TOKEN, MakeServer, Transcribe
from tests.conversation import hear_greeting, words
from tests.dialout_providers import CALLEE, KEY, TwilioDialout
from tests.fake_rest import RecordedRequest
from tests.fake_twilio import CALLS_PATH, RECORDINGS_PATH, FakeTwilio
from tests.recording_helpers import Recording
from tests.test_dialout_twilio_spec import SPEC, check_create_call, check_value

AUTH = {"Authorization": f"Bearer {KEY}"}


async def fetch(
    url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET `url` with the API key; status, headers and body."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={**AUTH, **(headers or {})}) as response,
    ):
        return response.status, dict(response.headers), await response.read()


def twilio_spec() -> dict[str, Any] | None:
    return json.loads(SPEC.read_text()) if SPEC.is_file() else None


def check_start_recording(spec: dict[str, Any], sent: RecordedRequest) -> list[str]:
    """What is wrong with `sent` as a `CreateCallRecording`, per Twilio's OpenAPI spec."""
    path = "/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Recordings.json"
    body = spec["paths"][path]["post"]["requestBody"]["content"]
    properties = body["application/x-www-form-urlencoded"]["schema"]["properties"]
    problems = [] if sent.auth_ok else ["not authenticated"]
    for name, value in sent.form:
        if name not in properties:
            problems.append(f"unknown field {name}")
            continue
        field = properties[name]
        field = field["items"] if field["type"] == "array" else field
        problems += [f"{name}={value!r}: {p}" for p in check_value(field, value)]
    return problems


async def wait_for(condition: Any, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_twilio_records_a_call_and_its_callback_lands_on_the_record(
    make_server: MakeServer, twilio: FakeTwilio, transcribe: Transcribe
) -> None:
    server = TwilioDialout(twilio).server(make_server, recording="twilio")
    async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN) as call:
        await call.dial()
        opening = transcribe(await hear_greeting(call)).lower()
        await wait_for(lambda: twilio.recordings.of(call.call_sid))
    # Whenever a call is recorded, the caller hears so first.
    assert {"call", "may", "be", "recorded"} <= words(opening), opening
    assert opening.index("record") < opening.index("repeat"), opening

    [started] = [r for r in twilio.requests if RECORDINGS_PATH.match(r.path)]
    assert started.status == 201 and f"/Calls/{call.call_sid}/" in started.path
    assert started.value("RecordingChannels") == "dual"
    assert started.value("RecordingStatusCallback") == f"{server.url}/recording-status"
    assert started.values("RecordingStatusCallbackEvent") == ["completed", "absent"]
    if (spec := twilio_spec()) is not None:
        assert check_start_recording(spec, started) == []

    # A forged report changes nothing; Twilio's own lands on the record.
    forged = await twilio.recordings.report_completed(call.call_sid, 9, auth_token="not-it")
    assert forged == [403]
    _, _, body = await fetch(f"{server.url}/calls/{call.call_sid}")
    assert json.loads(body)["recording"] is None
    assert await twilio.recordings.report_completed(call.call_sid, 7) == [204]
    _, _, body = await fetch(f"{server.url}/calls/{call.call_sid}")
    record = json.loads(body)
    assert record["recording"] == {
        "url": f"/calls/{call.call_sid}/recording",
        "duration": 7.0,
        "source": "twilio",
    }

    # The recording is fetched from Twilio with the account's credentials, ranges too.
    url = f"{server.url}{record['recording']['url']}"
    status, _, wav_bytes = await fetch(url)
    assert status == 200
    wav = Recording.parse(wav_bytes)
    assert (wav.rate, round(wav.seconds)) == (8000, 7)
    status, headers, part = await fetch(url, {"Range": "bytes=100-199"})
    assert status == 206 and part == wav_bytes[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(wav_bytes)}"


async def test_a_placed_call_is_recorded_from_its_creation(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    dialout = TwilioDialout(twilio)
    server = dialout.server(make_server, recording="twilio", public_url="https://bot.example.com")
    status, _, answer = await dialout.dial(server, {"to": CALLEE})
    assert status == 201, answer
    [created] = [r for r in twilio.requests if CALLS_PATH.match(r.path)]
    assert created.value("Record") == "true"
    assert created.value("RecordingChannels") == "dual"
    assert created.value("RecordingStatusCallback") == "https://bot.example.com/recording-status"
    assert created.values("RecordingStatusCallbackEvent") == ["completed", "absent"]
    if (spec := twilio_spec()) is not None:
        assert check_create_call(spec, created) == []
    # A request may still say no.
    status, _, answer = await dialout.dial(server, {"to": CALLEE, "record": False})
    assert status == 201, answer
    last = [r for r in twilio.requests if CALLS_PATH.match(r.path)][-1]
    assert last.value("Record") == "false" and last.value("RecordingChannels") is None


async def test_a_recording_callback_with_a_bad_signature_is_refused(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = TwilioDialout(twilio).server(make_server, recording="twilio")
    url = f"{server.url}/recording-status"
    form = {"CallSid": "CA" + "1" * 32, "RecordingSid": "RE" + "2" * 32}
    form |= {"RecordingStatus": "completed", "RecordingDuration": "3"}
    async with aiohttp.ClientSession() as session:
        for token in (None, "not-the-token"):
            headers = {}
            if token:
                headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(url, form)
            async with session.post(url, data=form, headers=headers) as answer:
                assert answer.status == 403
        signed = RequestValidator(TEST_AUTH_TOKEN).compute_signature(url, form)
        async with session.post(url, data=form, headers={"X-Twilio-Signature": signed}) as answer:
            assert answer.status == 204
        bad = {**form, "RecordingSid": "../../etc"}
        signed = RequestValidator(TEST_AUTH_TOKEN).compute_signature(url, bad)
        async with session.post(url, data=bad, headers={"X-Twilio-Signature": signed}) as answer:
            assert answer.status == 400
