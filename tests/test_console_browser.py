"""The console in a real browser: an operator watches a phone call live, reads it, places
a call, and talks to the bot from the browser's microphone.

Headless Chromium (tests/browser.py) against a real server; phone calls are
the simulator's, speaking Twilio's protocol with Piper's voice. Each test
saves screenshots of the pages it visits to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import expect

from simulator import SimulatedCall
from tests.browser import (
    DESKTOP,
    PHONE,
    ConsolePage,
    launched,
    microphone_flags,
    write_microphone_wav,
)
from tests.conftest import TEST_AUTH_TOKEN, MakeServer, Transcribe
from tests.conversation import hear_greeting, speak, words
from tests.dialout_providers import AUTH, KEY, OUR_NUMBER, http, twilio_settings
from tests.fake_twilio import FakeTwilio
from tests.records_helpers import reading, record_when
from tests.server_thread import ServerThread

FROM, TO = "+15550001111", "+15550002222"
# Said by the bot as its greeting, so it is on the transcript: it must show as text.
HOSTILE = "<script>alert(1)</script>"
GREETING = f"Hello {HOSTILE} there."
SENTENCE = "The purple elephant is dancing in the kitchen."
KEY_WORDS = {"purple", "elephant", "dancing", "kitchen"}


def console_server(
    make_server: MakeServer, twilio: FakeTwilio, tmp_path: Path, **overrides: Any
) -> ServerThread:
    """A server with the console on (it needs the API key), its records in SQLite."""
    return make_server(
        **twilio_settings(
            twilio.base_url, database_url=f"sqlite:///{tmp_path / 'console.db'}", **overrides
        )
    )


@pytest.mark.speech  # the caller's words on the call page are what the server's Whisper heard
async def test_an_operator_watches_a_phone_call_live_then_reads_it(
    make_server: MakeServer, twilio: FakeTwilio, tmp_path: Path
) -> None:
    server = console_server(make_server, twilio, tmp_path)
    sentence = await speak(SENTENCE)
    # Quoted as aiohttp sends it (parentheses as they are), so the URL signed is the one sent.
    webhook = f"{server.url}/?greeting={quote(GREETING, safe='()/')}"
    caller = SimulatedCall(
        webhook,
        auth_token=TEST_AUTH_TOKEN,
        from_number=FROM,
        to_number=TO,
    )
    async with launched() as browser, ConsolePage.open(browser, server.url) as console:
        page = console.page
        await console.log_in(KEY, shot="login")

        async with caller:
            await caller.dial()
            row = page.locator(f'#live tr[data-sid="{caller.call_sid}"]')
            await expect(row).to_be_visible(timeout=2000)  # on Live within 2 s
            await expect(row).to_contain_text(f"{FROM} → {TO}")
            await hear_greeting(caller)
            # The last thing said is the greeting, as text: no script ran or was added.
            await expect(row.locator(".said")).to_contain_text(HOSTILE, timeout=10_000)
            assert await page.locator("#live script").count() == 0
            await caller.say(sentence)
            await expect(row.locator(".said")).to_contain_text("I heard", timeout=30_000)
            await console.shot("live")

        await expect(row).to_have_count(0, timeout=10_000)  # hung up: gone from Live
        async with reading(f"sqlite+aiosqlite:///{tmp_path / 'console.db'}") as store:
            await record_when(store, caller.call_sid)

        await page.goto("/console/calls")
        listed = page.locator(f'#calls tr[data-sid="{caller.call_sid}"]')
        await expect(listed).to_contain_text("completed")
        await expect(listed).to_contain_text("caller_hung_up")
        await console.shot("calls")
        await page.goto(f"/console/calls?q={quote('ELEPHANT')}")
        await expect(listed).to_be_visible()
        await page.goto("/console/calls?q=giraffe")
        await expect(page.locator("#calls-total")).to_have_text("0 calls")

        await page.goto(f"/console/calls/{caller.call_sid}")
        await check_call_page(console, caller.call_sid)

        await page.goto("/console/overview")
        await expect(page.locator("#figure-calls")).to_have_text("1")
        await expect(page.locator("#figure-p50")).to_contain_text(" ")
        assert (await page.locator("#figure-p95").inner_text()) != "–"
        assert await page.locator("svg.chart").count() == 5
        await console.shot("overview")
        # Usable from the keyboard: the first Tab reaches the skip link, the next the menu.
        await page.keyboard.press("Tab")
        await expect(page.locator(":focus")).to_have_text("Skip to the content")
        await page.keyboard.press("Tab")
        await expect(page.locator(":focus")).to_have_text("Live")

        # A POST that does not carry the session's CSRF token is refused.
        refused = await page.request.post("/console/logout", max_redirects=0)
        assert refused.status == 403
        await page.goto("/console")  # still logged in
        assert page.url.endswith("/console")
        console.assert_no_errors()


async def check_call_page(console: ConsolePage, call_sid: str) -> None:
    """The call's page: its timeline in order, the hostile greeting as text, phone-sized."""
    page = console.page
    entries = page.locator("#timeline li")
    whos = [who.strip() for who in await entries.locator(".who").all_inner_texts()]
    assert whos == ["Started", "Answered", "Bot", "Caller", "Bot", "Ended"], whos
    texts = await entries.locator(".text").all_inner_texts()
    assert HOSTILE in texts[2]
    assert len(KEY_WORDS & words(texts[3])) >= 3, texts[3]
    assert texts[4].startswith("I heard:")
    await expect(entries.nth(4).locator(".latency")).to_contain_text("replied in")
    assert await page.locator("#timeline script").count() == 0
    await expect(page.locator("#raw")).to_contain_text(f'"call_sid": "{call_sid}"')
    await expect(page.locator("#end-reason")).to_have_text("caller_hung_up")
    await console.shot("call")
    await page.set_viewport_size(PHONE)
    # Readable on a phone: nothing makes the page wider than the screen.
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    wide = await page.evaluate(
        """[...document.querySelectorAll("body *")]
            .filter((e) => e.getBoundingClientRect().right > innerWidth)
            .map((e) => `${e.tagName}.${e.className}`)"""
    )
    assert overflow <= 0, f"{overflow} px wider than a phone's screen, from {wide}"
    await console.shot("call-phone")
    await page.set_viewport_size(DESKTOP)


async def test_placing_a_call_from_the_console(
    make_server: MakeServer, twilio: FakeTwilio, tmp_path: Path
) -> None:
    server = console_server(make_server, twilio, tmp_path)
    async with launched() as browser, ConsolePage.open(browser, server.url) as console:
        page = console.page
        await console.log_in(KEY)
        await page.goto("/console/place")
        console.expect_status(422)
        await page.fill("#to", "555-1234")  # not E.164: the API's own check answers
        await page.fill("#parameters", "customer_id=42")
        await page.click("button:text('Call')")
        await expect(page.locator("#place-errors")).to_contain_text("is not an E.164 number")
        assert twilio.calls_created() == []
        await expect(page.locator("#parameters")).to_have_value("customer_id=42")
        await console.shot("place")

        await page.fill("#to", "+15557654321")
        async with page.expect_navigation():
            await page.click("button:text('Call')")
        assert "/console/calls/CA" in page.url
        await expect(page.locator("#call-status")).to_have_text("queued")
        [placed] = twilio.calls_created()
        assert placed.value("To") == "+15557654321"
        assert placed.value("From") == OUR_NUMBER

        refused = await page.request.post("/console/place", form={"to": "+15557654321"})
        assert refused.status == 403  # no CSRF token
        assert len(twilio.calls_created()) == 1
        console.assert_no_errors()


async def test_a_browser_call_hears_the_greeting_and_a_reply(
    make_server: MakeServer, twilio: FakeTwilio, tmp_path: Path, transcribe: Transcribe
) -> None:
    server = console_server(make_server, twilio, tmp_path)
    # The microphone waits while the bot greets, says the sentence, then stays quiet.
    silence = b"\0\0" * 8000
    speech = silence * 6 + await speak(SENTENCE) + silence * 10
    wav = write_microphone_wav(tmp_path / "caller.wav", speech)
    async with (
        launched(*microphone_flags(wav)) as browser,
        ConsolePage.open(browser, server.url) as console,
    ):
        page = console.page
        await console.log_in(KEY)
        await page.goto("/console/talk")
        await console.shot("talk-idle")
        await page.click("#call-button")
        transcript = page.locator("#transcript li")
        await expect(transcript).to_have_count(3, timeout=45_000)
        await expect(transcript.nth(2)).to_contain_text("I heard", timeout=5_000)
        await page.click("#keypad button[data-key='4']")
        await page.click("#keypad button[data-key='2']")
        await expect(transcript).to_have_count(5, timeout=20_000)
        await expect(transcript.nth(3)).to_contain_text("42")
        await expect(transcript.nth(4)).to_contain_text("You pressed four and two.")
        await asyncio.sleep(1.0)  # the last words play out
        await console.shot("talk")
        played = base64.b64decode(await page.evaluate("window.switchboardTalk.played()"))
        call_sid = await page.evaluate("window.switchboardTalk.callSid()")
        await page.click("#hangup-button")
        await expect(page.locator("#talk-state")).to_have_text("You hung up.")
        console.assert_no_errors()

    text = transcribe(played)
    heard = words(text) | set(re.findall(r"[0-9]", text))  # Whisper may write "4" for "four"
    assert {"repeat", "goodbye"} <= heard, text  # the greeting
    assert len(KEY_WORDS & heard) >= 3, text  # the reply echoes the caller
    assert "pressed" in heard and {"four", "4"} & heard and {"two", "2"} & heard, text
    record = await call_record(server, call_sid)
    assert (record["provider"], record["from"], record["to"]) == ("browser", "browser", "console")
    said = [turn["text"] for turn in record["turns"] if turn["role"] == "user"]
    assert said and len(KEY_WORDS & words(said[0])) >= 3, record["turns"]
    assert record["end_reason"] == "caller_hung_up"


async def call_record(server: ServerThread, call_sid: str, within: float = 15) -> dict[str, Any]:
    """The call's record once it has ended, through `GET /calls/{sid}`."""
    for _ in range(int(within / 0.2)):
        status, _, record = await http("GET", f"{server.url}/calls/{call_sid}", headers=AUTH)
        if status == 200 and record["end_reason"] is not None:
            return record  # type: ignore[no-any-return]
        await asyncio.sleep(0.2)
    raise AssertionError(f"call {call_sid} did not end on record")


async def test_a_call_page_plays_the_calls_recording(
    make_server: MakeServer, twilio: FakeTwilio, tmp_path: Path
) -> None:
    server = console_server(
        make_server, twilio, tmp_path, recording="local", recordings_dir=tmp_path / "recordings"
    )
    caller = SimulatedCall(server.url, auth_token=TEST_AUTH_TOKEN)
    async with caller:
        await caller.dial()
        await hear_greeting(caller)
    record = await call_record(server, caller.call_sid)
    for _ in range(50):  # the recording is listed once its file is complete
        if record["recording"] is not None:
            break
        await asyncio.sleep(0.2)
        record = await call_record(server, caller.call_sid)
    assert record["recording"]["url"] == f"/calls/{caller.call_sid}/recording", record
    async with launched() as browser, ConsolePage.open(browser, server.url) as console:
        page = console.page
        await console.log_in(KEY)
        await page.goto(f"/console/calls/{caller.call_sid}")
        audio = page.locator("audio#recording")
        await expect(audio).to_be_visible()
        duration = await audio.evaluate(
            """audio => new Promise((resolve, reject) => {
                if (audio.readyState >= 1) return resolve(audio.duration);
                audio.addEventListener("loadedmetadata", () => resolve(audio.duration));
                audio.addEventListener("error", () => reject(new Error("cannot load")));
            })"""
        )
        assert duration > 1.0, duration  # at least the greeting
        await console.shot("call-recording")
        console.assert_no_errors()
