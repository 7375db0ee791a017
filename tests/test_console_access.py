"""Who gets into the console, over plain HTTP and websockets: the key, the session cookie,
CSRF tokens, and browser calls on /ws."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

import console.session as sessions
from settings import Settings
from tests.conftest import MakeServer
from tests.dialout_providers import AUTH, KEY, twilio_settings
from tests.fake_twilio import FakeTwilio
from tests.server_thread import ServerThread

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
BROWSER_SID = "BR" + "ab" * 16
STREAM_SID = "MZ" + "cd" * 16


def console_server(make_server: MakeServer, twilio: FakeTwilio) -> ServerThread:
    return make_server(**twilio_settings(twilio.base_url))


def client(**options: Any) -> aiohttp.ClientSession:
    """An HTTP client that keeps cookies, from 127.0.0.1 too, as a browser does."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **options)


def session_cookie(server: ServerThread, **overrides: Any) -> str:
    """A session cookie signed as `server` signs them (or as `overrides` to its settings say)."""
    settings: Settings = server.app.state.settings
    return sessions.new_session(settings.model_copy(update=overrides))


async def log_in(http: aiohttp.ClientSession, base: str, key: str = KEY) -> aiohttp.ClientResponse:
    """Open the login form, then send `key` with the form's CSRF token."""
    async with http.get(f"{base}/console/login") as form:
        token = CSRF_FIELD.search(await form.text())
    assert token is not None
    return await http.post(
        f"{base}/console/login",
        data={"key": key, "csrf": token.group(1), "next": "/console"},
        allow_redirects=False,
    )


async def test_the_console_is_off_without_an_api_key(make_server: MakeServer) -> None:
    server = make_server()
    async with client() as http:
        for path in ("/console", "/console/login", "/console/static/console.css"):
            async with http.get(f"{server.url}{path}") as response:
                assert response.status == 404, path


async def test_a_wrong_key_gets_a_plain_error_after_a_pause_and_the_right_one_a_session(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = console_server(make_server, twilio)
    async with client() as http:
        began = time.monotonic()
        async with await log_in(http, server.url, key="not-the-key-at-all") as wrong:
            body = await wrong.text()
            assert wrong.status == 401
        assert time.monotonic() - began >= 1.0  # every wrong key waits as long
        assert "Wrong key." in body and "not-the-key-at-all" not in body
        assert sessions.COOKIE not in wrong.cookies

        async with await log_in(http, server.url) as right:
            assert right.status == 303 and right.headers["Location"] == "/console"
            cookie = right.headers["Set-Cookie"]
        assert cookie.startswith(f"{sessions.COOKIE}=")
        assert {"HttpOnly", "SameSite=strict", "Path=/"} <= {p.strip() for p in cookie.split(";")}
        async with http.get(f"{server.url}/console") as live:
            assert live.status == 200
            assert "Live calls" in await live.text()


async def test_a_login_without_its_csrf_token_is_refused(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = console_server(make_server, twilio)
    async with client() as http:
        form = {"key": KEY, "next": "/console"}
        async with http.post(f"{server.url}/console/login", data=form) as response:
            assert response.status == 403
            assert sessions.COOKIE not in response.cookies


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(lambda server: session_cookie(server)[:-3] + "AAA", id="tampered"),
        pytest.param(
            lambda server: session_cookie(server, dialout_api_key=SecretStr("another-key-01234")),
            id="another-server",
        ),
        pytest.param(
            lambda server: sessions.sign(server.app.state.settings, {"sid": "x", "exp": 1}),
            id="expired",
        ),
        pytest.param(lambda server: "garbage", id="garbage"),
    ],
)
async def test_a_session_that_is_not_ours_goes_back_to_login(
    make_server: MakeServer, twilio: FakeTwilio, cookie: Any
) -> None:
    server = console_server(make_server, twilio)
    jar = {sessions.COOKIE: cookie(server)}
    async with client(cookies=jar) as http:
        async with http.get(
            f"{server.url}/console/calls?page=2",
            headers={"Accept": "text/html"},
            allow_redirects=False,
        ) as page:
            assert page.status == 303
            assert page.headers["Location"] == "/console/login?next=/console/calls%3Fpage%3D2"
        async with http.get(f"{server.url}/console/live/feed") as feed:
            assert feed.status == 401
        async with http.get(f"{server.url}/calls") as api:
            assert api.status == 401


async def test_a_post_without_the_csrf_token_is_refused(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = console_server(make_server, twilio)
    async with client() as http:
        (await log_in(http, server.url)).close()
        async with http.get(f"{server.url}/console/place") as page:
            token = CSRF_FIELD.search(await page.text())
        assert token is not None
        for form in ({}, {"csrf": "forged"}):
            for path in ("/console/logout", "/console/place"):
                async with http.post(
                    f"{server.url}{path}", data=form | {"to": "+15557654321"}
                ) as r:
                    assert r.status == 403, (path, form)
        assert twilio.calls_created() == []
        headers = {"X-CSRF-Token": token.group(1)}
        async with http.post(
            f"{server.url}/console/logout", headers=headers, allow_redirects=False
        ) as out:
            assert out.status == 303 and out.headers["Location"] == "/console/login"
            assert f'{sessions.COOKIE}=""' in out.headers["Set-Cookie"]


async def test_a_session_reads_the_records_api_but_cannot_dial(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = console_server(make_server, twilio)
    async with client() as http:
        (await log_in(http, server.url)).close()
        async with http.get(f"{server.url}/calls") as records:
            assert records.status == 200
        body = {"to": "+15557654321"}
        async with http.post(f"{server.url}/dialout", json=body) as dial:
            assert dial.status == 401  # a POST needs the key itself
        async with http.post(f"{server.url}/dialout", json=body, headers=AUTH) as dial:
            assert dial.status == 201


async def test_login_only_sends_on_to_the_consoles_own_pages(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = console_server(make_server, twilio)
    for target in ("//evil.example/console", "https://evil.example/", "/console/../calls"):
        async with client() as http:
            async with http.get(f"{server.url}/console/login") as form:
                token = CSRF_FIELD.search(await form.text())
            assert token is not None
            async with http.post(
                f"{server.url}/console/login",
                data={"key": KEY, "csrf": token.group(1), "next": target},
                allow_redirects=False,
            ) as response:
                assert (response.status, response.headers["Location"]) == (303, "/console"), target


def browser_start(call_sid: str = BROWSER_SID) -> str:
    return json.dumps(
        {
            "event": "start",
            "provider": "browser",
            "streamSid": STREAM_SID,
            "start": {
                "streamSid": STREAM_SID,
                "callSid": call_sid,
                "customParameters": {},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


async def open_browser_call(
    server: ServerThread, headers: dict[str, str], call_sid: str = BROWSER_SID
) -> tuple[int | None, str]:
    """Open /ws as the Talk page does; the close code and reason, or (None, first event)."""
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{server.url}/ws", headers=headers) as ws,
    ):
        await ws.send_str(browser_start(call_sid))
        message = await ws.receive(timeout=20)
        if message.type == aiohttp.WSMsgType.TEXT:
            return None, json.loads(message.data)["event"]
        return ws.close_code, str(message.extra or "")


async def test_a_browser_call_needs_a_console_session_from_this_servers_pages(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = console_server(make_server, twilio)
    ours = server.url
    cookie = f"{sessions.COOKIE}={session_cookie(server)}"
    foreign = f"{sessions.COOKIE}={session_cookie(server, dialout_api_key=SecretStr('x' * 24))}"

    assert await open_browser_call(server, {"Origin": ours}) == (
        1008,
        "invalid signature",  # no credentials at all: taken for an unsigned Twilio stream
    )
    code, reason = await open_browser_call(server, {"Origin": ours, "Cookie": foreign})
    assert (code, reason) == (1008, "invalid console session, or a page of another site")
    code, _ = await open_browser_call(server, {"Origin": "http://evil.example", "Cookie": cookie})
    assert code == 1008
    code, _ = await open_browser_call(server, {"Cookie": cookie})  # no Origin: not a page
    assert code == 1008
    code, reason = await open_browser_call(
        server, {"Origin": ours, "Cookie": cookie}, call_sid="CA" + "ab" * 16
    )
    assert code == 1003 and "BR" in reason  # cannot pass for a phone call's record
    assert await open_browser_call(server, {"Origin": ours, "Cookie": cookie}) == (None, "media")


async def test_the_console_pages_forbid_framing_and_foreign_scripts(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = console_server(make_server, twilio)
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/console/login") as page:
        policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
