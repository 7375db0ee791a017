"""Status callbacks for placed calls: Twilio's, signed, at /status, and Exotel's, with the
path's token, at /exotel/status/{token}; each keeps the call's latest status."""

from __future__ import annotations

from typing import Any

from dialout.placers import exotel_status_token
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, MakeServer, offline_settings
from tests.dialout_providers import (
    AUTH,
    CALLEE,
    CALLER_ID,
    EXOTEL_CALLEE,
    OUR_NUMBER,
    Dialout,
    ExotelDialout,
    TwilioDialout,
    callback_url,
    http,
    latest,
    post_signed,
)
from tests.fake_exotel import FakeExotel
from tests.fake_twilio import FakeTwilio
from tests.server_thread import ServerThread


async def placed_call(
    make_server: MakeServer, dialout: Dialout, body: dict[str, Any]
) -> tuple[ServerThread, str]:
    """A server that has placed a call through `dialout`; the server and the call's SID."""
    server = dialout.server(make_server)
    status, _, placed = await dialout.dial(server, body)
    assert status == 201, placed
    return server, placed["call_sid"]


# -- Twilio's status callbacks ------------------------------------------------------------


async def post_status(
    server: ServerThread, form: dict[str, str], token: str | None = TEST_AUTH_TOKEN
) -> int:
    return await post_signed(f"{server.url}/status", form, token)


def callback(call_sid: str, status: str, sequence: int, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": TEST_ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": status,
        "Direction": "outbound-api",
        "From": OUR_NUMBER,
        "To": CALLEE,
        "SequenceNumber": str(sequence),
        "CallbackSource": "call-progress-events",
        **extra,
    }


async def test_status_callbacks_keep_each_placed_calls_latest_status(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    body = {"to": CALLEE, "machine_detection": "Enable"}
    server, sid = await placed_call(make_server, TwilioDialout(twilio), body)

    assert (await latest(server, sid))["status"] == "queued"
    assert await post_status(server, callback(sid, "initiated", 0)) == 204
    assert await post_status(server, callback(sid, "ringing", 1)) == 204
    assert (await latest(server, sid))["status"] == "ringing"
    answered = callback(sid, "in-progress", 2, AnsweredBy="human")
    assert await post_status(server, answered) == 204
    assert await post_status(server, callback(sid, "ringing", 1)) == 204  # late, out of order
    now = await latest(server, sid)
    assert (now["status"], now["answered_by"]) == ("in-progress", "human")

    forged = callback(sid, "completed", 3, CallDuration="1")
    assert await post_status(server, forged, token=None) == 403
    assert await post_status(server, forged, token="someone-elses-token") == 403
    assert (await latest(server, sid))["status"] == "in-progress"

    assert await post_status(server, callback(sid, "completed", 3, CallDuration="42")) == 204
    assert (await latest(server, sid)).items() >= {
        "call_sid": sid,
        "status": "completed",
        "to": CALLEE,
        "from": OUR_NUMBER,
        "answered_by": "human",
        "duration": 42,
    }.items()


async def test_a_signed_status_of_a_call_not_on_record_starts_its_record(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    # Signed by Twilio: a call of this account (placed by another replica, or before its
    # record could be written), not to be dropped.
    server = TwilioDialout(twilio).server(make_server)
    stranger = "CA" + "5" * 32
    assert await post_status(server, callback(stranger, "ringing", 1)) == 204
    record = await latest(server, stranger)
    assert (record["status"], record["direction"], record["provider"]) == (
        "ringing",
        "outbound",
        "twilio",
    )
    assert await post_status(server, {"CallStatus": "ringing"}) == 400
    assert (
        await post_status(server, callback(stranger, "in-progress", 2) | {"SequenceNumber": "x"})
        == 204
    )
    assert (await latest(server, stranger))["status"] == "in-progress"


async def test_unsigned_status_of_a_call_not_on_record_is_left_alone(
    make_server: MakeServer,
) -> None:
    # Signatures off (no auth token): anyone may post, so a stranger starts no record.
    server = make_server()
    stranger = "CA" + "6" * 32
    assert await post_status(server, callback(stranger, "ringing", 1), token=None) == 204
    status, _, _ = await http("GET", f"{server.url}/calls/{stranger}", headers=AUTH)
    assert status in (401, 404)


# -- Exotel's status callbacks -------------------------------------------------------------


async def post_exotel_status(
    server: ServerThread, fields: dict[str, Any], token: str | None, *, as_json: bool = False
) -> int:
    url = f"{server.url}/exotel/status" + (f"/{token}" if token is not None else "")
    if as_json:
        status, _, _ = await http("POST", url, json_body=fields)
    else:
        status, _, _ = await http("POST", url, form=fields)
    return status


def exotel_callback(call_sid: str, event: str, status: str, **extra: str) -> dict[str, str]:
    """A StatusCallback as Exotel documents it, with the event fields subscribed to."""
    return {
        "CallSid": call_sid,
        "EventType": event,
        "Status": status,
        "DateUpdated": "2025-01-15 14:30:45",
        "DateCreated": "2025-01-15 14:30:01",
        "To": EXOTEL_CALLEE,
        "From": EXOTEL_CALLEE,
        "PhoneNumberSid": CALLER_ID,
        "Direction": "outbound-api",
        "RecordingUrl": "",
        **extra,
    }


def callback_token(exotel: FakeExotel) -> str:
    return exotel_status_token(offline_settings(**ExotelDialout(exotel).settings()))


async def test_exotel_status_callbacks_keep_the_calls_latest_status(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    body = {"to": EXOTEL_CALLEE, "parameters": {"order": "7"}}
    server, sid = await placed_call(make_server, ExotelDialout(exotel), body)
    token = callback_token(exotel)
    [sent] = exotel.calls_placed()
    assert callback_url(sent).startswith(f"{server.url}/exotel/status/{token}?attempt=")

    answered = exotel_callback(sid, "answered", "in-progress")
    assert await post_exotel_status(server, answered, token) == 204
    assert (await latest(server, sid))["status"] == "in-progress"

    ended = exotel_callback(
        sid, "terminal", "completed", ConversationDuration="42", CustomField="order=7"
    )
    assert await post_exotel_status(server, ended, None) == 403
    assert await post_exotel_status(server, ended, "0" * 32) == 403
    # Twilio's /status cannot touch an Exotel call (unsigned: this server has no Twilio token).
    twilio_form = {"CallSid": sid, "CallStatus": "busy", "SequenceNumber": "9"}
    status, _, _ = await http("POST", f"{server.url}/status", form=twilio_form)
    assert status == 204
    assert (await latest(server, sid))["status"] == "in-progress"

    assert await post_exotel_status(server, ended, token) == 204
    assert await post_exotel_status(server, answered, token) == 204  # late: changes nothing
    expected = {
        "call_sid": sid,
        "status": "completed",
        "to": EXOTEL_CALLEE,
        "from": CALLER_ID,
        "answered_by": None,
        "duration": 42,
    }
    assert (await latest(server, sid)).items() >= expected.items()


async def test_exotel_status_callbacks_in_json_and_for_strangers(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    server, sid = await placed_call(make_server, ExotelDialout(exotel), {"to": EXOTEL_CALLEE})
    token = callback_token(exotel)
    busy = exotel_callback(sid, "terminal", "busy", ConversationDuration="0")
    assert await post_exotel_status(server, busy, token, as_json=True) == 204
    now = await latest(server, sid)
    assert (now["status"], now["duration"]) == ("busy", 0)

    # The token vouches for a call this server's Exotel account placed: it is recorded.
    stranger = "f" * 32
    unknown = exotel_callback(stranger, "terminal", "completed")
    assert await post_exotel_status(server, unknown, token) == 204
    record = await latest(server, stranger)
    assert (record["status"], record["provider"]) == ("completed", "exotel")
    # The old form, with the token in the query string, still works for calls placed before.
    old_form = exotel_callback(stranger + "0", "terminal", "busy")
    status, _, _ = await http("POST", f"{server.url}/exotel/status?token={token}", form=old_form)
    assert status == 204
    assert await post_exotel_status(server, {"Status": "completed"}, token) == 400
    assert await post_exotel_status(server, {"CallSid": sid}, token) == 400


async def test_an_exotel_callback_whose_fields_are_not_text_is_refused(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    server, sid = await placed_call(make_server, ExotelDialout(exotel), {"to": EXOTEL_CALLEE})
    token = callback_token(exotel)
    odd_fields = (
        {"Status": {"state": "completed"}},
        {"EventType": ["terminal"]},
        {"ConversationDuration": False},
    )
    for odd in odd_fields:
        callback = exotel_callback(sid, "terminal", "completed") | odd
        assert await post_exotel_status(server, callback, token, as_json=True) == 400, odd
    assert (await latest(server, sid))["status"] != "completed"
