"""Simulated calls leave their records and transcripts, in SQLite and in PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import aiohttp
import pytest

from simulator import (
    CallRejected,
    CallsApi,
    PlacedCall,
    SimulatedCall,
    parse_twiml,
    place_dialout,
)
from tests.conftest import TEST_AUTH_TOKEN, MakeServer
from tests.conversation import speak, words
from tests.dialout_providers import KEY, post_signed, twilio_settings
from tests.records_helpers import reading, record_when, say_after_the_greeting
from tests.server_thread import ServerThread, free_port

FROM, TO = "+15550001111", "+15550002222"


@pytest.mark.speech
async def test_a_caller_who_hangs_up_leaves_a_record_and_its_transcript(
    make_server: MakeServer, database_url: str
) -> None:
    server = make_server(database_url=database_url)
    sentence = await speak("The purple elephant is dancing in the kitchen.")
    call = SimulatedCall(f"{server.url}/?customer=42", from_number=FROM, to_number=TO)
    async with reading(database_url) as store:
        async with call:
            await call.dial()
            # Each turn is on record as soon as it is over, while the call goes on.
            await say_after_the_greeting(store, call, sentence)
            await call.wait_for_bot_quiet(quiet=1.0)
            await call.press("79")
            await record_when(store, call.call_sid, ready="turns", turns=5)
            await call.wait_for_bot_quiet(quiet=1.0)
        assert call.closed_by == "caller"
        record = await record_when(store, call.call_sid)
    assert record.end_reason == "caller_hung_up"
    assert record.status == "completed"
    assert (record.provider, record.direction) == ("twilio", "inbound")
    assert (record.from_number, record.to_number) == (FROM, TO)
    assert record.parameters == {"customer": "42"}
    assert record.answered_at is not None and record.ended_at is not None
    assert record.started_at <= record.answered_at <= record.ended_at

    turns = [(turn.role, turn.text) for turn in record.turns]
    roles = [role for role, _ in turns]
    assert roles == ["assistant", "user", "assistant", "dtmf", "assistant"], turns
    greeting, said, echo, keys, named = (turn.text for turn in record.turns)
    assert {"repeat", "goodbye"} <= words(greeting)
    # Whisper tiny on 8 kHz audio may drop a word; the transcript must carry most of them.
    assert len({"purple", "elephant", "dancing", "kitchen"} & words(said)) >= 3, said
    assert echo.startswith("I heard:") and words(said) <= words(echo)
    assert keys == "79"
    assert named == "You pressed seven and nine."
    assert [turn.seq for turn in record.turns] == [1, 2, 3, 4, 5]
    times = [turn.at for turn in record.turns]
    assert times == sorted(times)
    assert record.started_at <= times[0] and times[-1] <= record.ended_at


@pytest.mark.speech
async def test_a_call_the_bot_ends_with_goodbye_is_recorded_as_bot_ended(
    make_server: MakeServer, database_url: str
) -> None:
    server = make_server(database_url=database_url)
    goodbye = await speak("Goodbye.")
    async with (
        reading(database_url) as store,
        SimulatedCall(server.url, from_number=FROM, to_number=TO) as call,
    ):
        await call.dial()
        await record_when(store, call.call_sid, ready="turns", turns=1)
        await call.wait_for_bot_quiet(quiet=1.0)
        await call.say(goodbye)
        await call.wait_closed(timeout=30)
        record = await record_when(store, call.call_sid)
    assert call.closed_by == "server"
    assert (record.end_reason, record.status) == ("bot_ended", "completed")
    turns = [(turn.role, turn.text) for turn in record.turns]
    assert [role for role, _ in turns] == ["assistant", "user", "assistant"], turns
    assert "goodbye" in words(turns[1][1])
    assert turns[2][1] == "Goodbye! Thanks for calling."


async def post_status(server: ServerThread, placed: PlacedCall, status: str, **extra: str) -> int:
    """Send a status callback as Twilio does, signed for the URL the call asked for."""
    callback = placed.form["StatusCallback"]
    form = {
        "AccountSid": placed.account_sid,
        "CallSid": placed.call_sid,
        "CallStatus": status,
        "Direction": "outbound-api",
        "From": placed.form["From"],
        "To": placed.form["To"],
        **extra,
    }
    parts = urlsplit(callback)
    return await post_signed(f"{server.url}{parts.path}?{parts.query}", form, signed_for=callback)


@pytest.mark.speech
async def test_a_placed_call_is_recorded_with_its_status_and_answering_machine_result(
    make_server: MakeServer, database_url: str
) -> None:
    twilio_api = f"http://127.0.0.1:{free_port()}"
    server = make_server(
        **twilio_settings(
            twilio_api,
            database_url=database_url,
            twilio_phone_number=FROM,
            outbound_greeting_wait_secs=0.5,
        )
    )
    hello = await speak("I am happy to talk right now.")
    body = {"to": TO, "parameters": {"customer": "42"}, "machine_detection": "Enable"}
    async with CallsApi(twilio_api, auth_token=TEST_AUTH_TOKEN) as api:
        placed = await place_dialout(server.url, KEY, body, api)
    async with reading(database_url) as store:
        queued = await store.get_call(placed.call_sid)
        assert queued is not None and (queued.status, queued.direction) == ("queued", "outbound")

        for sequence, status in enumerate(("initiated", "ringing")):
            assert await post_status(server, placed, status, SequenceNumber=str(sequence)) == 204
        answered = {"SequenceNumber": "2", "AnsweredBy": "human"}
        assert await post_status(server, placed, "in-progress", **answered) == 204
        stream_url, parameters = parse_twiml(placed.form["Twiml"])
        callee = SimulatedCall(
            server.url,
            auth_token=TEST_AUTH_TOKEN,
            from_number=FROM,
            to_number=TO,
            account_sid=placed.account_sid,
            call_sid=placed.call_sid,
        )
        async with callee:
            await callee.connect_stream(stream_url, parameters)
            await say_after_the_greeting(store, callee, hello)
        done = {"SequenceNumber": "3", "CallDuration": "12"}
        assert await post_status(server, placed, "completed", **done) == 204
        record = await record_when(store, placed.call_sid)

    assert (record.direction, record.from_number, record.to_number) == ("outbound", FROM, TO)
    assert record.parameters == {"customer": "42"}
    assert (record.status, record.answered_by, record.duration) == ("completed", "human", 12)
    assert record.end_reason == "caller_hung_up"
    assert record.answered_at is not None and record.ended_at is not None
    assert record.started_at <= record.answered_at <= record.ended_at
    assert [turn.role for turn in record.turns] == ["assistant", "user", "assistant"]
    assert {"happy", "talk"} <= words(record.turns[1].text), record.turns[1].text


@pytest.mark.speech
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_store_transcripts_false_keeps_only_the_metadata(
    make_server: MakeServer, database_url: str
) -> None:
    server = make_server(database_url=database_url, store_transcripts=False)
    hello = await speak("This is a private matter.")
    async with SimulatedCall(server.url, from_number=FROM, to_number=TO) as call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=20)
        said_at = await call.say(hello)
        await call.wait_for_bot_audio(after=said_at, timeout=20)

    async with reading(database_url) as store:
        record = await record_when(store, call.call_sid)
    assert record.end_reason == "caller_hung_up"
    assert (record.from_number, record.to_number) == (FROM, TO)
    assert record.turns == []


async def test_a_stream_that_never_starts_leaves_the_ringing_call_on_record(
    make_server: MakeServer, database_url: str
) -> None:
    server = make_server(database_url=database_url)
    call = SimulatedCall(f"{server.url}/?customer=7", from_number=FROM, to_number=TO)

    async with aiohttp.ClientSession() as session:
        response = await session.post(call.webhook_url, data=call.webhook_params())
        assert response.status == 200

    async with reading(database_url) as store:
        deadline = time.monotonic() + 20
        while (record := await store.get_call(call.call_sid)) is None:
            assert time.monotonic() < deadline, "the webhook left no record"
            await asyncio.sleep(0.1)
    assert (record.status, record.direction, record.parameters) == (
        "ringing",
        "inbound",
        {"customer": "7"},
    )
    assert record.answered_at is None and record.end_reason is None


async def test_calls_turned_away_busy_are_recorded_as_rejected(
    make_server: MakeServer, database_url: str
) -> None:
    full = make_server(database_url=database_url, max_calls=1)
    other = make_server(database_url=database_url)
    async with reading(database_url) as store, SimulatedCall(full.url) as holder:
        await holder.dial()
        await record_when(store, holder.call_sid, ready="turns", turns=1)

        at_webhook = SimulatedCall(f"{full.url}/?customer=7", from_number=FROM, to_number=TO)
        with pytest.raises(CallRejected, match="busy"):
            await at_webhook.dial()
        # Another replica took the webhook; the stream lands on the full one.
        at_stream = SimulatedCall(full.url, from_number=FROM, to_number=TO)
        twiml = await post_webhook(other, at_stream)
        async with at_stream:
            await at_stream.connect_stream(*parse_twiml(twiml))
            await at_stream.wait_closed(timeout=10)
        assert at_stream.close_code == 1013

        for call in (at_webhook, at_stream):
            record = await record_when(store, call.call_sid)
            assert (record.end_reason, record.status) == ("rejected", "busy"), call.call_sid
            assert (record.direction, record.from_number, record.to_number) == (
                "inbound",
                FROM,
                TO,
            )
            assert record.answered_at is None and record.turns == []
        assert (await record_when(store, at_webhook.call_sid)).parameters == {"customer": "7"}
        live = await store.get_call(holder.call_sid)
        assert live is not None and (live.status, live.end_reason) == ("in-progress", None)


async def post_webhook(server: ServerThread, call: SimulatedCall) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.url}/", data=call.webhook_params()) as response,
    ):
        assert response.status == 200
        return await response.text()
