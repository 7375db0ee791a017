"""What the transfer tests share: a server wired to the fake Twilio (and LLM), and Twilio's
side of a transfer: its signed requests to the dial's action and the whisper URL."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from typing import Any

import aiohttp
from twilio.request_validator import RequestValidator

from tests.conftest import OWN_URL, MakeServer
from tests.fake_twilio import FakeTwilio
from tests.recording_helpers import API_KEY
from tests.server_thread import ServerThread

SALES = "+15551230001"
SUPPORT = "+15551230002"
TARGETS = f"sales={SALES},support={SUPPORT}"


def transfer_server(make_server: MakeServer, twilio: FakeTwilio, **overrides: Any) -> ServerThread:
    """A server that checks Twilio's signatures and transfers through the fake Twilio."""
    settings: dict[str, Any] = {
        "dialout_api_key": API_KEY,
        "public_url": OWN_URL,
        "twilio_account_sid": twilio.account_sid,
        "twilio_auth_token": twilio.auth_token,
        "twilio_api_base_url": twilio.base_url,
        "transfer_targets": TARGETS,
    }
    return make_server(**(settings | overrides))


async def signed_post(
    url: str, form: dict[str, str], auth_token: str, *, signed: bool = True
) -> tuple[int, str]:
    """POST a form to `url` as Twilio does, signed with the account's auth token."""
    headers = {}
    if signed:
        headers["X-Twilio-Signature"] = RequestValidator(auth_token).compute_signature(url, form)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=form, headers=headers) as response,
    ):
        return response.status, await response.text()


def dial_of(twiml: str) -> ElementTree.Element:
    """The `<Dial>` of a call update's TwiML, parsed as XML."""
    document = ElementTree.fromstring(twiml)
    assert document.tag == "Response", twiml
    dial = document.find("Dial")
    assert dial is not None, twiml
    return dial


async def until(check: Callable[[], Any], within: float = 30, what: str = "") -> Any:
    """Poll `check` until it gives something truthy; that."""
    deadline = time.monotonic() + within
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        await asyncio.sleep(0.05)
    return found
