"""The console's session: a signed cookie, its CSRF token, and the checks every page makes.

A session is `base64(json{"sid", "exp"}).base64(HMAC-SHA256)`, signed with a key
derived from `DIALOUT_API_KEY`: a cookie signed by a server with another key,
changed, or past its expiry is refused, and changing the key logs everyone out.
The CSRF token is derived from the session's random id, so it needs no storage
and is the same on every replica.

    LoginRequired   no valid session: pages redirect to the login page, feeds answer 401
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request, cookie_parser

from settings import Settings

COOKIE = "switchboard_console"
# Set by the login page, so the login form carries a CSRF token before any session.
LOGIN_COOKIE = "switchboard_console_login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_SECS = 12 * 3600
LOGIN_FORM_SECS = 3600
# Purpose labels, so a value signed for one use never passes for another.
_SESSION_SALT = b"switchboard.console.session.v1"
_CSRF = "csrf"
_LOGIN = "login"


class LoginRequired(Exception):
    """The request carries no valid console session."""


@dataclass(frozen=True)
class Session:
    """A logged-in console session.

    Attributes:
        sid: Random, 128 bits; the CSRF token is derived from it.
        expires: Unix time after which the cookie is refused.
        csrf: The token forms and fetches must carry back.
    """

    sid: str
    expires: int
    csrf: str


def enabled(settings: Settings) -> bool:
    """Whether the console is on: only with an API key to log in with."""
    return settings.dialout_api_key is not None


def _key(settings: Settings) -> bytes:
    api_key = settings.dialout_api_key
    if api_key is None:
        raise LoginRequired
    return hmac.digest(api_key.get_secret_value().encode(), _SESSION_SALT, hashlib.sha256)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, value: str) -> str:
    return _b64(hmac.digest(key, f"{purpose}:{value}".encode(), hashlib.sha256))


def sign(settings: Settings, payload: dict[str, Any]) -> str:
    """`payload` as a signed cookie value."""
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_mac(_key(settings), COOKIE, body)}"


def unsign(settings: Settings, value: str | None) -> dict[str, Any] | None:
    """The payload of a signed value, or None when it is missing, forged or expired."""
    if not value or "." not in value or settings.dialout_api_key is None:
        return None
    body, _, mac = value.rpartition(".")
    if not hmac.compare_digest(mac.encode(), _mac(_key(settings), COOKIE, body).encode()):
        return None
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
        return None
    return payload if payload["exp"] > time.time() else None


def new_session(settings: Settings) -> str:
    """A fresh session's cookie value."""
    expires = int(time.time()) + SESSION_SECS
    return sign(settings, {"sid": secrets.token_urlsafe(16), "exp": expires})


def new_login_form(settings: Settings) -> str:
    """The login page's cookie value: a nonce the login form's CSRF token is bound to."""
    nonce = secrets.token_urlsafe(16)
    return sign(settings, {"sid": nonce, "exp": int(time.time()) + LOGIN_FORM_SECS})


def read_session(settings: Settings, cookie: str | None) -> Session | None:
    """The session a cookie value holds, if it is valid."""
    payload = unsign(settings, cookie)
    if payload is None or not isinstance(payload.get("sid"), str):
        return None
    sid = payload["sid"]
    return Session(sid=sid, expires=payload["exp"], csrf=csrf_token(settings, sid))


def csrf_token(settings: Settings, sid: str, purpose: str = _CSRF) -> str:
    """The CSRF token of a session (or of a login form's nonce)."""
    return _mac(_key(settings), purpose, sid)


def login_csrf(settings: Settings, cookie: str | None) -> str | None:
    """The CSRF token the login form must carry back, for the login cookie it was given."""
    payload = unsign(settings, cookie)
    if payload is None or not isinstance(payload.get("sid"), str):
        return None
    return csrf_token(settings, payload["sid"], _LOGIN)


def session_of_headers(settings: Settings, headers: Headers) -> Session | None:
    """The console session a request's (or websocket upgrade's) cookies carry, if valid."""
    return read_session(settings, cookie_parser(headers.get("cookie", "")).get(COOKIE))


def require_session(connection: HTTPConnection) -> Session:
    """A dependency: the request's console session.

    Raises:
        LoginRequired: No valid session (the app sends pages to the login page).
    """
    settings: Settings = connection.app.state.settings
    session = read_session(settings, connection.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired
    return session


async def require_csrf(request: Request) -> Session:
    """A dependency for POSTs: a valid session whose CSRF token came with the request.

    The token is read from the `X-CSRF-Token` header or the form's `csrf` field.

    Raises:
        HTTPException: 403 when the token is missing or wrong.
        LoginRequired: No valid session.
    """
    session = require_session(request)
    given = request.headers.get(CSRF_HEADER)
    if given is None and "form" in request.headers.get("content-type", ""):
        given = str((await request.form()).get(CSRF_FIELD) or "")
    if not given or not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise HTTPException(403, "Missing or wrong CSRF token: reload the page and try again")
    return session
