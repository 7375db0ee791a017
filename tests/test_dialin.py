"""Dial-in, end to end: Twilio's webhook, the signed media stream, and a spoken conversation."""

from __future__ import annotations

import asyncio
import re
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from simulator import SimulatedCall
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, MakeServer, Transcribe
from tests.conversation import QUIET, hear_goodbye, hear_greeting, hear_reply, speak, words
from tests.fake_twilio import FakeTwilio
from tests.server_thread import ServerThread


async def post_webhook(url: str, form: dict[str, str], headers: dict[str, str] | None = None):
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=form, headers=headers or {}) as response,
    ):
        return response.status, await response.text()


async def wait_for_tasks(server: ServerThread, baseline: int, within: float = 10) -> int:
    """Poll until the server runs no more tasks than `baseline`; return the last count."""
    deadline = time.monotonic() + within
    count = server.task_count()
    while count > baseline and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        count = server.task_count()
    return count


async def test_webhook_answers_a_stream_with_escaped_parameters_and_nothing_after(
    make_server: MakeServer,
) -> None:
    server = make_server()
    tricky = "a<b & \"c\" 'd'"
    status, body = await post_webhook(
        f"{server.url}/?session_type={aiohttp.helpers.quote(tricky)}",
        {"CallSid": "CA" + "1" * 32, "From": "+15550001111", "To": "+15550002222"},
        headers={"X-Forwarded-Proto": "https", "Host": "voice.example.com"},
    )
    assert status == 200
    root = ET.fromstring(body)
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Connect"]
    streams = list(root.find("Connect") or [])
    assert [s.tag for s in streams] == ["Stream"]
    url = streams[0].get("url", "")
    assert url == "wss://voice.example.com/ws"
    assert not urlsplit(url).query
    parameters = {p.get("name"): p.get("value") for p in streams[0]}
    assert parameters == {
        "session_type": tricky,
        "from_number": "+15550001111",
        "to_number": "+15550002222",
        "direction": "inbound",
    }


async def test_public_url_names_the_stream_host(make_server: MakeServer) -> None:
    server = make_server(public_url="https://bots.example.org")
    _, body = await post_webhook(f"{server.url}/", {"From": "+1", "To": "+2"})
    stream = ET.fromstring(body).find("Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://bots.example.org/ws"


async def test_a_webhook_with_a_missing_or_wrong_signature_gets_403(
    make_server: MakeServer,
) -> None:
    server = make_server(twilio_account_sid=TEST_ACCOUNT_SID, twilio_auth_token=TEST_AUTH_TOKEN)
    form = {"CallSid": "CA" + "2" * 32, "From": "+15550001111", "To": "+15550002222"}
    url = f"{server.url}/"
    assert (await post_webhook(url, form))[0] == 403
    wrong = RequestValidator("another-token").compute_signature(url, form)
    status, body = await post_webhook(url, form, {"X-Twilio-Signature": wrong})
    assert (status, body) == (403, "invalid signature")
    right = RequestValidator(TEST_AUTH_TOKEN).compute_signature(url, form)
    status, body = await post_webhook(url, form, {"X-Twilio-Signature": right})
    assert status == 200 and "<Stream" in body


async def test_a_websocket_with_a_wrong_or_missing_signature_is_closed_with_1008(
    make_server: MakeServer,
) -> None:
    server = make_server(twilio_account_sid=TEST_ACCOUNT_SID, twilio_auth_token=TEST_AUTH_TOKEN)
    stream_url = twiml_stream_url(server)
    ws_url = server.url.replace("http://", "ws://") + "/ws"
    for token in ("not-the-token", None):
        headers = {}
        if token:
            headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(
                stream_url, {}
            )
        async with connect(ws_url, additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        assert (ws.close_code, ws.close_reason) == (1008, "invalid signature")
    async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN) as call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=20)
    assert call.close_code in (None, 1000)


def twiml_stream_url(server: ServerThread) -> str:
    """The Stream url a server's webhook names, when reached at its loopback address."""
    host = urlsplit(server.url).netloc
    return f"wss://{host}/ws"


async def test_a_caller_talks_to_the_echo_agent_and_says_goodbye(
    make_server: MakeServer, transcribe: Transcribe
) -> None:
    with FakeTwilio(account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN) as twilio:
        server = make_server(
            twilio_account_sid=TEST_ACCOUNT_SID,
            twilio_auth_token=TEST_AUTH_TOKEN,
            twilio_api_base_url=twilio.base_url,
        )
        sentence = await speak("The purple elephant is dancing in the kitchen.")
        goodbye = await speak("Goodbye.")
        async with SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN) as call:
            await call.dial()
            greeting = transcribe(await hear_greeting(call))
            assert {"repeat", "goodbye"} <= words(greeting), greeting

            reply = transcribe(await hear_reply(call, sentence))
            # Whisper tiny on 8 kHz audio may drop a word; the echo must carry most of them.
            assert "heard" in words(reply), reply
            assert len({"purple", "elephant", "dancing", "kitchen"} & words(reply)) >= 3, reply

            heard_before = len(call.heard)
            await call.press("79")
            await call.wait_for_bot_audio(after=time.monotonic(), timeout=20)
            await call.wait_for_bot_quiet(quiet=QUIET)
            keys = transcribe(call.heard[heard_before:])
            assert "press" in keys.lower(), keys
            assert re.search(r"(7|seven)\W+and\W+(9|nine)", keys.lower()), keys

            farewell = transcribe(await hear_goodbye(call, goodbye))
        assert {"goodbye", "calling"} <= words(farewell), farewell
        assert call.closed_by == "server"
        hangups = twilio.hangups()
        assert len(hangups) == 1
        assert dict(hangups[0].form) == {"Status": "completed"}
        assert hangups[0].path.endswith(f"/Calls/{call.call_sid}.json")


# A greeting long enough to still be playing well after the caller talks over it.
LONG_GREETING = (
    "Thank you for calling the reservations line of the Blue Harbour restaurant, where we "
    "serve fresh seafood every day of the week, and where we are always happy to help you "
    "book a table for lunch or for dinner at any one of our three places in the old town."
)
# From the caller's first word to the last bot audio they hear: VAD's 0.2 s to confirm
# speech, the clear on the wire, and much room for a busy machine.
BARGE_IN_SECS = 1.5


async def test_talking_over_the_bot_stops_its_audio(make_server: MakeServer) -> None:
    server = make_server()
    interruption = await speak("Hold on a moment please, I have a question for you about the menu.")
    spoken_secs = len(interruption) / 16000
    assert spoken_secs > 2 * BARGE_IN_SECS
    call = SimulatedCall(f"{server.url}/?{urlencode({'greeting': LONG_GREETING})}")
    async with call:
        await call.dial()
        await call.wait_for_bot_audio(timeout=20)
        await call.silence(1.0)
        said_at = await call.say(interruption)
        began = said_at - spoken_secs
        await call.wait_for_bot_quiet(quiet=0.5)

    heard = call.earpiece.heard_between(began, said_at)
    # The greeting was playing when the caller began: a broken barge-in plays it on.
    assert heard and heard[0] - began < 0.1, heard[:3]
    assert heard[-1] - began <= BARGE_IN_SECS, f"heard the bot {heard[-1] - began:.2f} s on"
    assert call.clears >= 1


async def test_stop_and_abrupt_disconnects_leave_no_tasks_behind(make_server: MakeServer) -> None:
    server = make_server()
    baseline = server.task_count()
    async with SimulatedCall(server.url) as polite:
        await polite.dial()
        await polite.wait_for_bot_audio(timeout=20)
    abrupt = SimulatedCall(server.url)
    await abrupt.dial()
    await abrupt.wait_for_bot_audio(timeout=20)
    assert abrupt._ws is not None
    abrupt._ws.transport.abort()  # the line drops: no stop, no close frame
    await abrupt.hang_up()
    assert await wait_for_tasks(server, baseline) <= baseline
    assert server.app.state.admission.running == 0


async def test_bad_frames_are_survived_and_other_calls_do_not_notice(
    make_server: MakeServer, transcribe: Transcribe
) -> None:
    server = make_server()
    hello = await speak("The weather is sunny today.")
    async with SimulatedCall(server.url) as victim, SimulatedCall(server.url) as bystander:
        await victim.dial()
        await bystander.dial()
        await victim.wait_for_bot_audio(timeout=20)
        for junk in (
            "this is not json",
            b"\x00\x01binary\xff",
            '{"event": "telepathy"}',
            '{"event": "media", "media": {"payload": "%%% not base64 %%%"}}',
            '{"event": "media"}',
            '{"event": "dtmf", "dtmf": {"digit": "X"}}',
            "[1, 2, 3]",
        ):
            await victim.send_raw(junk)
        for call in (victim, bystander):
            await call.wait_for_bot_quiet(quiet=0.5)
        marks = {id(c): len(c.heard) for c in (victim, bystander)}
        said = await asyncio.gather(victim.say(hello), bystander.say(hello))
        for call, at in zip((victim, bystander), said, strict=True):
            await call.wait_for_bot_audio(after=at, timeout=20)
            await call.wait_for_bot_quiet(quiet=QUIET)
            reply = words(transcribe(call.heard[marks[id(call)] :]))
            assert "heard" in reply and reply & {"weather", "sunny", "today"}, reply
            assert call.close_code is None


async def test_a_stream_without_start_is_closed_plainly(make_server: MakeServer) -> None:
    server = make_server()
    ws_url = server.url.replace("http://", "ws://") + "/ws"
    async with connect(ws_url) as ws:
        await ws.send('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
        await ws.send('{"event": "media", "media": {"payload": "//////8="}}')
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1003
    assert "before the start" in (ws.close_reason or "")
    status, _ = await post_webhook(f"{server.url}/", {"From": "+1", "To": "+2"})
    assert status == 200


@pytest.mark.parametrize("hiccup", [0.0, 0.5], ids=["on_time", "after_a_network_hiccup"])
async def test_a_pause_inside_what_the_caller_says_does_not_end_their_turn(
    make_server: MakeServer, transcribe: Transcribe, hiccup: float
) -> None:
    # A breath between two sentences: about 0.45 s of silence, inside the 0.6 s
    # the caller may pause (VAD stop 0.2 s + pause window 0.4 s). After a hiccup the
    # network holds the audio after the breath, then delivers it at once: the pause
    # the caller made is what counts, not how late it came.
    first = await speak("The purple elephant is dancing in the kitchen.")
    second = await speak("The yellow cat is sleeping on the sofa.")
    breath = bytes(int(0.3 * 8000) * 2)
    server = make_server()
    async with SimulatedCall(server.url) as call:
        await call.dial()
        await hear_greeting(call)
        clears_before = call.clears
        said = asyncio.create_task(call.say(first + breath))
        await asyncio.sleep(0)  # queued before the hiccup and the second sentence
        if hiccup:
            call.hiccup(hiccup)
        reply = words(transcribe(await hear_reply(call, second)))
        await said
    # Every turn the caller starts clears the bot's audio: one turn, one `clear`.
    # Had the turn ended at the breath, the bot would have started on half of it
    # and been cleared again when the caller went on.
    assert call.clears == clears_before + 1
    assert {"elephant", "dancing", "kitchen"} & reply, reply
    assert {"cat", "sleeping", "sofa"} & reply, reply
