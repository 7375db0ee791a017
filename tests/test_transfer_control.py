"""Transfers and hang-ups over the API (`POST /calls/{sid}/transfer`, `/hangup`): on the
replica holding the call, from another one (Twilio, by call SID), on Exotel (the stream is
closed so the flow's next applet takes over), and every bad request answered plainly."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from simulator import ExotelCall, SimulatedCall
from telephony.call_info import CallInfo
from tests.conftest import MakeServer, Transcribe
from tests.conversation import hear_greeting, words
from tests.fake_twilio import FakeTwilio
from tests.recording_helpers import API_KEY, get, post
from tests.records_helpers import reading, record_when
from tests.test_call_control import hear_next
from tests.transfer_helpers import (
    SALES,
    TARGETS,
    dial_of,
    signed_post,
    transfer_server,
    until,
)
from tests.webhook_servers import SECRET, EventReceiver


async def test_a_transfer_twilio_refuses_is_said_and_the_call_goes_on(
    make_server: MakeServer, tmp_path: Path, transcribe: Transcribe
) -> None:
    with FakeTwilio() as twilio:
        server = transfer_server(make_server, twilio)
        unknown = "CA" + secrets.token_hex(16)
        status, answer = await post(f"{server.url}/calls/{unknown}/transfer", {"target": "sales"})
        assert (status, answer["detail"]) == (404, f"No call {unknown} is on record")
        async with SimulatedCall(server.url, auth_token=twilio.auth_token) as call:
            await call.dial()
            await hear_greeting(call)
            calls = f"{server.url}/calls/{call.call_sid}"

            status, answer = await post(f"{calls}/transfer", {"target": "marketing"})
            assert status == 422 and "marketing" in answer["detail"], answer
            assert twilio.requests == []  # no REST request for a target not configured

            twilio.refuse_next_update(400, 13214, "Dial: Invalid callerId value")
            status, answer = await post(f"{calls}/transfer", {"target": "sales"})
            assert status == 502 and "13214" in answer["detail"], answer
            heard = words(transcribe(await hear_next(call)))
            assert {"could", "not", "transfer"} <= heard, heard
            assert call.close_code is None  # the call goes on
            assert (await post(f"{calls}/say", {"text": "Still here."}))[0] == 202
            await hear_next(call)

            twilio.end_call(call.call_sid)  # Twilio no longer sees it in progress
            status, answer = await post(f"{calls}/transfer", {"target": "support"})
            assert status == 409 and "21220" in answer["detail"], answer
            await hear_next(call)

            status, answer = await post(f"{calls}/hangup", {})
            assert (status, answer) == (200, {"call_sid": call.call_sid, "status": "ended"})
            await call.wait_closed(timeout=10)
            assert call.closed_by == "server"
        # The call is hung up through Twilio's REST API, not only its stream closed.
        (hangup,) = await until(twilio.hangups, what="the REST hang-up")
        assert hangup.path.endswith(f"/Calls/{call.call_sid}.json")
        assert [r.status for r in twilio.call_updates()] == [400, 400]
        database = f"sqlite:///{tmp_path / 'switchboard.db'}"
        async with reading(database) as store:
            record = await record_when(store, call.call_sid)
        assert record.end_reason == "ended_by_api"
        assert (record.transfer_target, record.transfer_status) == ("support", "refused")
        status, answer = await post(f"{calls}/transfer", {"target": "sales"})
        assert (status, answer["detail"]) == (409, f"Call {call.call_sid} has ended")
        status, answer = await post(f"{calls}/hangup", {})
        assert (status, answer["detail"]) == (409, f"Call {call.call_sid} has ended")


async def _held_elsewhere(database: str, provider: str) -> CallInfo:
    """A call whose stream started on another replica sharing the records."""
    call = CallInfo(
        provider=provider,
        call_sid="CA" + secrets.token_hex(16),
        stream_sid="MZ" + secrets.token_hex(16),
        account_sid="AC" + secrets.token_hex(16),
        from_number="+15550001111",
        to_number="+15550002222",
        direction="inbound",
    )
    async with reading(database) as store:
        await store.start_call(call, replica="another-replica")
    return call


async def test_any_replica_transfers_and_hangs_up_a_twilio_call_by_its_sid(
    make_server: MakeServer, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'switchboard.db'}"
    with FakeTwilio() as twilio, EventReceiver() as receiver:
        server = transfer_server(
            make_server,
            twilio,
            events_url=f"{receiver.base_url}/events",
            webhook_secret=SECRET,
            tools_allow_private=True,
        )
        transferred = await _held_elsewhere(database, "twilio")
        url = f"{server.url}/calls/{transferred.call_sid}"
        status, answer = await post(f"{url}/transfer", {"target": "nobody"})
        assert status == 422 and twilio.requests == []
        status, answer = await post(f"{url}/transfer", {"target": "sales"})
        assert (status, answer) == (
            200,
            {"call_sid": transferred.call_sid, "target": "sales", "to": SALES, "status": "dialing"},
        )
        (update,) = twilio.call_updates()
        dial = dial_of(update.value("Twiml") or "")
        assert dial.get("callerId") == transferred.to_number
        assert [n.text for n in dial.findall("Number")] == [SALES]
        assert dial.get("action", "").startswith(f"{server.url}/transfer/dial-result?")
        status, _, shown_body = await get(url)
        shown = json.loads(shown_body)["transfer"]
        assert (status, shown["target"], shown["to"], shown["status"]) == (
            200,
            "sales",
            SALES,
            "dialing",
        )

        hung_up = await _held_elsewhere(database, "twilio")
        status, answer = await post(f"{server.url}/calls/{hung_up.call_sid}/hangup", {})
        assert status == 200, answer
        (hangup,) = twilio.hangups()
        assert hangup.path.endswith(f"/Calls/{hung_up.call_sid}.json") and hangup.status == 200

        exotel = await _held_elsewhere(database, "exotel")
        requests: tuple[tuple[str, dict[str, str]], ...] = (
            ("hangup", {}),
            ("transfer", {"target": "sales"}),
        )
        for action, request in requests:
            status, answer = await post(f"{server.url}/calls/{exotel.call_sid}/{action}", request)
            assert status == 409 and "replica that holds its stream" in answer["detail"], answer
        assert len(twilio.requests) == 2

        # The holder sees Twilio end its stream: the record says the call was transferred.
        # (The holder here is the test's own store, which writes no events.)
        async with reading(database) as store:
            await store.end_call(transferred.call_sid, "caller_hung_up", leg=1)
        # Twilio says nobody answered: the events tell the operator both ends of the transfer.
        form = {"CallSid": transferred.call_sid, "DialCallStatus": "no-answer"}
        assert (await signed_post(dial.get("action", ""), form, twilio.auth_token))[0] == 200
        delivered = await receiver.wait_for(3)
        assert receiver.unverified == 0
        sent = {(r.body["type"], r.body["data"]["call_sid"]): r.body["data"] for r in delivered}
        assert set(sent) == {
            ("call.transferred", transferred.call_sid),
            ("call.transfer_ended", transferred.call_sid),
            ("call.ended", hung_up.call_sid),
        }, sent
        handed = sent["call.transferred", transferred.call_sid]
        assert (handed["target"], handed["to"], handed["status"]) == ("sales", SALES, "dialing")
        assert "summary" not in handed
        assert sent["call.transfer_ended", transferred.call_sid]["status"] == "no-answer"
        assert sent["call.ended", hung_up.call_sid]["end_reason"] == "ended_by_api"
    async with reading(database) as store:
        record = await record_when(store, transferred.call_sid)
        assert (record.transfer_target, record.transfer_status) == ("sales", "no-answer")
        assert record.end_reason == "transferred"
        assert (await record_when(store, hung_up.call_sid)).end_reason == "ended_by_api"


async def test_an_exotel_call_is_handed_to_the_flow_after_the_handoff_line(
    make_server: MakeServer, tmp_path: Path, transcribe: Transcribe
) -> None:
    server = make_server(dialout_api_key=API_KEY, transfer_targets=TARGETS)
    async with ExotelCall(server.url) as call:
        await call.dial()
        await hear_greeting(call)
        before = len(call.heard)
        status, answer = await post(
            f"{server.url}/calls/{call.call_sid}/transfer", {"target": "support"}
        )
        assert (status, answer["status"]) == (200, "handed_off"), answer
        await call.wait_closed(timeout=20)
        assert call.closed_by == "server" and call.close_code == 1000
    heard = words(transcribe(call.heard[before:]))
    assert {"transfer", "support"} <= heard, heard
    database = f"sqlite:///{tmp_path / 'switchboard.db'}"
    async with reading(database) as store:
        record = await record_when(store, call.call_sid)
    assert record.end_reason == "transferred"
    assert (record.transfer_target, record.transfer_status) == ("support", "handed_off")

    async with ExotelCall(server.url) as call:
        await call.dial()
        await hear_greeting(call)
        status, _ = await post(f"{server.url}/calls/{call.call_sid}/hangup", {})
        assert status == 200
        await until(lambda: call.closed_by, what="the stream to close")
    assert call.closed_by == "server"
    async with reading(database) as store:
        assert (await record_when(store, call.call_sid)).end_reason == "ended_by_api"
