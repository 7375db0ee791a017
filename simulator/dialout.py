"""Twilio's Calls API, as far as the callee's side of a dial-out needs it.

With ``--dialout`` the simulator serves the API the server places calls
through, posts ``/dialout``, and answers the call the server creates, sending
the status callbacks Twilio would send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from simulator.errors import DialoutError
from simulator.twilio import new_sid


@dataclass(frozen=True)
class PlacedCall:
    """A call the server created through the simulated Calls API.

    Attributes:
        account_sid: The account in the request's path.
        call_sid: The SID the simulator gave the call.
        form: The create request's form fields (the first value of each).
        events: The ``StatusCallbackEvent`` values asked for.
    """

    account_sid: str
    call_sid: str
    form: dict[str, str]
    events: list[str]


# Twilio's status callback event, and the CallStatus it reports.
CALL_PROGRESS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "answered": "in-progress",
    "completed": "completed",
}


class CallsApi:
    """``POST /2010-04-01/Accounts/{sid}/Calls.json`` on a loopback port, for ``--dialout``.

    A create is checked as Twilio checks it (Basic auth, with the token when one
    is known; ``To``, ``From`` and inline ``Twiml``), answered 201 ``queued``, and
    queued on ``placed`` for the simulator to answer as the callee.
    """

    def __init__(self, base_url: str, *, auth_token: str | None = None) -> None:
        """Prepare to serve at ``base_url``, e.g. ``http://127.0.0.1:8765``.

        Raises:
            ValueError: ``base_url`` is not an http URL on this machine with a port.
        """
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"{base_url} is not http://127.0.0.1:PORT")
        if parts.port is None:
            raise ValueError(f"{base_url} has no port")
        self.base_url = base_url
        self.placed: asyncio.Queue[PlacedCall] = asyncio.Queue()
        self._address = (parts.hostname, parts.port)
        self._auth_token = auth_token
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls.json", self._create)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, *self._address).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _create(self, request: web.Request) -> web.Response:
        account = request.match_info["account"]
        try:
            auth = aiohttp.BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            auth = None
        token_ok = self._auth_token is None or (
            auth is not None and secrets.compare_digest(auth.password, self._auth_token)
        )
        if auth is None or auth.login != account or not token_ok:
            return _twilio_error(401, 20003, "Authenticate")
        posted = await request.post()
        form = {key: str(posted[key]) for key in posted}
        for field, code in (("To", 21201), ("From", 21213), ("Twiml", 21205)):
            if not form.get(field):
                return _twilio_error(400, code, f"No '{field}' is specified")
        call = PlacedCall(
            account, new_sid("CA"), form, [str(v) for v in posted.getall("StatusCallbackEvent", [])]
        )
        self.placed.put_nowait(call)
        resource = {"sid": call.call_sid, "account_sid": account, "status": "queued"}
        resource |= {"to": form["To"], "from": form["From"], "direction": "outbound-api"}
        return web.json_response(resource, status=201)


def _twilio_error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "status": status}, status=status)


async def place_dialout(
    server_url: str, api_key: str | None, body: dict[str, Any], api: CallsApi
) -> PlacedCall:
    """``POST /dialout`` and return the call the server then created through ``api``.

    Raises:
        DialoutError: The server refused, or created the call somewhere else.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = server_url.rstrip("/") + "/dialout"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        text = await response.text()
    if response.status != 201:
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
            detail = json.loads(text)["detail"]
            text = "; ".join(e["msg"] for e in detail) if isinstance(detail, list) else detail
        raise DialoutError(response.status, text)
    if api.placed.empty():
        raise DialoutError(
            response.status,
            f"the server placed the call, but not through {api.base_url}: its "
            "TWILIO_API_BASE_URL points elsewhere, so a real phone may be ringing",
        )
    return api.placed.get_nowait()


async def report_status(
    server_url: str, auth_token: str | None, call: PlacedCall, event: str, sequence: int
) -> int | None:
    """Send the status callback Twilio sends for ``event``, if the call asked for it.

    Returns:
        The HTTP status the server answered, or None when nothing was sent.
    """
    callback = call.form.get("StatusCallback")
    if not callback or (event not in call.events and event != "completed"):
        return None
    form = {
        "AccountSid": call.account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call.call_sid,
        "CallStatus": CALL_PROGRESS[event],
        "CallbackSource": "call-progress-events",
        "Direction": "outbound-api",
        "From": call.form["From"],
        "To": call.form["To"],
        "SequenceNumber": str(sequence),
    }
    headers = {}
    if auth_token is not None:
        headers["X-Twilio-Signature"] = RequestValidator(auth_token).compute_signature(
            callback, form
        )
    server, target = urlsplit(server_url), urlsplit(callback)
    local = urlunsplit((server.scheme, server.netloc, target.path, target.query, ""))
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session,
        session.post(local, data=form, headers=headers) as response,
    ):
        return response.status
