"""Transfer to a human, over Twilio: the LLM picks a target by name, the bot says the
handoff line, and only once the caller heard it is the call updated to `<Dial>` the target;
when nobody answers, Twilio's `<Dial action>` brings the caller back to the bot, which
tells them and carries on. The agent who answers hears a whisper from a signed URL."""

from __future__ import annotations

import math
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from pydantic import ValidationError

from simulator import SimulatedCall
from simulator.twilio import parse_twiml
from tests.conftest import MakeServer, Transcribe, offline_settings
from tests.conversation import hear_greeting, hear_reply, speak, words
from tests.fake_openai import FakeOpenAI
from tests.fake_twilio import FakeTwilio
from tests.records_helpers import reading, record_when
from tests.transfer_helpers import SALES, dial_of, signed_post, transfer_server, until
from transfer.links import whisper_url
from transfer.summary import summarize

SUMMARY = "Ada Lovelace wants to move her delivery to Friday."


async def test_the_llm_transfers_a_caller_who_comes_back_when_nobody_answers(
    make_server: MakeServer, tmp_path: Path, transcribe: Transcribe
) -> None:
    question = await speak("Can I talk to a person in sales please?")
    llm = FakeOpenAI(
        tool_calls={"person": ("transfer_call", {"target": "sales"})},
        complete=lambda messages: SUMMARY,
    )
    with FakeTwilio() as twilio, llm:
        updated_at: list[float] = []
        twilio.on_success = lambda request: (
            updated_at.append(time.monotonic()) if request.value("Twiml") else None
        )
        server = transfer_server(
            make_server,
            twilio,
            llm="openai",
            openai_api_key=llm.api_key,
            openai_base_url=f"{llm.base_url}/v1",
            transfer_whisper=True,
        )
        token = twilio.auth_token
        async with SimulatedCall(server.url, auth_token=token) as call:
            await call.dial()
            await hear_greeting(call)
            before = len(call.heard)
            await call.say(question)
            (update,) = await until(twilio.call_updates, what="the call update")
            await call.wait_closed(timeout=20)
            handoff = call.heard[before:]
        # One update, after the handoff line had played out (its mark came back).
        assert len(twilio.call_updates()) == 1
        assert update.status == 200 and update.path.endswith(f"/Calls/{call.call_sid}.json")
        assert any(name.startswith("transfer-") for name in call.marks_echoed)
        assert not call.earpiece.heard_between(updated_at[0], math.inf)
        heard = words(transcribe(handoff))
        assert {"transfer", "sales"} <= heard, heard
        # The TwiML dials the configured number with the Twilio number the caller rang.
        dial = dial_of(update.value("Twiml") or "")
        assert dial.get("callerId") == call.to_number != call.from_number
        (number,) = dial.findall("Number")
        assert number.text == SALES
        offered = [t["function"] for t in llm.requests[0]["tools"]]
        transfer_tool = next(f for f in offered if f["name"] == "transfer_call")
        assert transfer_tool["parameters"]["properties"]["target"]["enum"] == ["sales", "support"]

        database = f"sqlite:///{tmp_path / 'switchboard.db'}"
        async with reading(database) as store:
            record = await record_when(store, call.call_sid)
        assert (record.end_reason, record.transfer_target, record.transfer_to) == (
            "transferred",
            "sales",
            SALES,
        )
        assert record.transfer_status == "dialing"

        # The agent's leg asks for the whisper: the LLM's summary of the conversation.
        whisper = number.get("url") or ""
        status, whispered = await signed_post(whisper, {"CallSid": "CA" + "1" * 32}, token)
        assert status == 200 and SUMMARY in whispered, whispered
        (summarised,) = [r for r in llm.requests if not r.get("stream")]
        assert "sales" in summarised["messages"][-1]["content"].lower()

        # Nobody answers: Twilio asks the dial's action, signed, and gets the bot back.
        action = dial.get("action") or ""
        assert action.startswith(server.url + "/")
        form = {
            "AccountSid": twilio.account_sid,
            "CallSid": call.call_sid,
            "DialCallStatus": "no-answer",
            "From": call.from_number,
            "To": call.to_number,
            "Direction": "inbound",
        }
        status, body = await signed_post(action, form, token, signed=False)
        assert status == 403  # Twilio's signature is required
        status, body = await signed_post(action, form, token)
        assert status == 200, body
        stream_url, parameters = parse_twiml(body)
        assert parameters["transfer_result"] == "no-answer" and parameters["leg"] == "2"
        # The stream token covers the transfer's parameters: a changed one is refused.
        forged = SimulatedCall(server.url, auth_token=token, call_sid=call.call_sid)
        await forged.connect_stream(stream_url, parameters | {"transfer_result": "completed"})
        await forged.wait_closed(timeout=10)
        assert forged.close_code == 1008, forged.close_reason
        async with SimulatedCall(server.url, auth_token=token, call_sid=call.call_sid) as back:
            await back.connect_stream(stream_url, parameters)
            again = words(transcribe(await hear_greeting(back)))
            assert {"sorry", "sales"} <= again, again
            assert back.close_code is None  # the call goes on
            # The bot knows the conversation so far: it carries on from it.
            await hear_reply(back, await speak("Okay, thank you."))
            (*_, carried_on) = [r for r in llm.requests if r.get("stream")]
            asked = [m["content"] for m in carried_on["messages"] if m["role"] == "user"]
            assert "sales" in asked[0].lower() and "thank" in asked[-1].lower(), asked
        async with reading(database) as store:
            record = await record_when(store, call.call_sid)
        assert (record.legs, record.transfer_status) == (2, "no-answer")
        assert record.end_reason == "caller_hung_up"
        said = [t.text for t in record.turns if t.role == "assistant"]
        assert any("transfer you to sales" in text for text in said), said
        assert any("could not take your call" in text for text in said), said

        # An answered transfer ends the call with the dial.
        status, body = await signed_post(action, form | {"DialCallStatus": "completed"}, token)
        assert status == 200 and "<Hangup" in body


async def test_a_forged_or_expired_whisper_url_is_refused(
    make_server: MakeServer, tmp_path: Path
) -> None:
    with FakeTwilio() as twilio:
        server = transfer_server(make_server, twilio, transfer_whisper=True)
        settings = server.app.state.settings
        call_sid = "CA" + "2" * 32
        token = twilio.auth_token
        good = whisper_url(server.url, settings, call_sid)
        status, body = await signed_post(good, {"CallSid": call_sid}, token)
        assert status == 200 and "<Say>" in body  # no record: a plain line

        parts = urlsplit(good)
        query = dict(parse_qsl(parts.query))
        for changed in (
            {"sig": query["sig"][:-2] + "AA"},
            {"call": "CA" + "3" * 32},
            {"expires": str(int(query["expires"]) + 60)},
            {"sig": ""},
        ):
            forged = f"{server.url}{parts.path}?{urlencode(query | changed)}"
            status, body = await signed_post(forged, {"CallSid": call_sid}, token)
            assert status == 403 and "refused" in body, (changed, body)
        expired = whisper_url(server.url, settings, call_sid, now=time.time() - 600)
        status, body = await signed_post(expired, {"CallSid": call_sid}, token)
        assert (status, body) == (403, "whisper URL refused: expired")


async def test_the_dial_result_needs_twilio_fields_and_never_fails_twilio(
    make_server: MakeServer,
) -> None:
    with FakeTwilio() as twilio:
        server = transfer_server(make_server, twilio)
        url = f"{server.url}/transfer/dial-result?target=sales&leg=2"
        token = twilio.auth_token
        status, body = await signed_post(url, {"CallSid": "CA" + "4" * 32}, token)
        assert status == 400 and "DialCallStatus" in body
        status, body = await signed_post(url, {"CallSid": "nope", "DialCallStatus": "busy"}, token)
        assert status == 400
        # A call with no record (another database, a lost write): back to the bot all the same.
        form = {"CallSid": "CA" + "5" * 32, "DialCallStatus": "busy", "From": "+15550001111"}
        status, body = await signed_post(url, form | {"To": "+15550002222"}, token)
        assert status == 200, body
        _, parameters = parse_twiml(body)
        assert parameters["from_number"] == "+15550001111"
        assert parameters["transfer_result"] == "busy" and "token" in parameters
        assert twilio.requests == []


def test_transfer_settings_are_checked_at_start_up() -> None:
    for targets, problem in (
        ("sales=12345", "not an E.164 number"),
        ("sales", r"is not name=\+number"),
        ("sales=+15551230001,sales=+15551230002", "named twice"),
        ("1sales=+15551230001", "letters, digits"),
        ("sales=+445551230001", r"outside DIALOUT_ALLOWED_PREFIXES"),
    ):
        with pytest.raises(ValidationError, match=problem):
            offline_settings(transfer_targets=targets, dialout_allowed_prefixes="+1")
    twilio = {"twilio_account_sid": "AC" + "0" * 32, "twilio_auth_token": "t" * 32}
    with pytest.raises(ValidationError, match="need PUBLIC_URL"):
        offline_settings(transfer_targets="sales=+15551230001", **twilio)
    settings = offline_settings(
        transfer_targets="sales=+15551230001", public_url="https://example.com", **twilio
    )
    assert settings.transfer_targets == {"sales": "+15551230001"}


async def test_without_an_llm_the_whisper_reads_the_last_turns() -> None:
    turns = [
        ("user", "Hello."),
        ("assistant", "Hello! How can I help you today?"),
        ("user", "My parcel never arrived."),
        ("assistant", "I am sorry to hear that."),
        ("user", "I want a refund."),
    ]
    summary = await summarize(offline_settings(llm="echo"), turns, "support", None)
    assert summary.startswith("A call transferred to support.")
    assert "The caller said: I want a refund." in summary
    assert "Hello." not in summary  # only the last turns
    # An LLM that cannot be reached gives way to the last turns too, within its time bound.
    unreachable = offline_settings(
        llm="openai", openai_api_key="sk-unused", openai_base_url="http://127.0.0.1:9/v1"
    )
    assert await summarize(unreachable, turns, "support", None) == summary
