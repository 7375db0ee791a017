"""Logging in to the console with the API key, and out.

GET  /console/login    the form (its CSRF token is bound to a short-lived cookie)
POST /console/login    the key: a session cookie, or the same plain error after a pause
POST /console/logout   ends the session
"""

from __future__ import annotations

import asyncio
import posixpath
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from loguru import logger

import console.session as sessions
from console.pages import render
from deps import CsrfDep, SettingsDep
from settings import Settings

# A wrong key is answered after this pause, always the same: guessing stays slow.
LOGIN_FAILURE_DELAY_SECS = 1.0
HOME = "/console"

router = APIRouter()


def _next_page(target: str | None) -> str:
    # Only the console's own pages: never an open redirect to somewhere else.
    parts = urlsplit(target or "")
    path = posixpath.normpath(parts.path) if parts.path else ""
    if parts.scheme or parts.netloc or "\\" in (target or "") or not path.startswith(HOME):
        return HOME
    return path + (f"?{parts.query}" if parts.query else "")


def _secure(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    return (forwarded or request.url.scheme) == "https"


def _login_page(
    request: Request, settings: Settings, target: str, error: str | None, status: int
) -> Response:
    nonce = sessions.new_login_form(settings)
    response = render(
        request,
        "login.html",
        None,
        status_code=status,
        login_csrf=sessions.login_csrf(settings, nonce),
        target=target,
        error=error,
    )
    response.set_cookie(
        sessions.LOGIN_COOKIE,
        nonce,
        max_age=sessions.LOGIN_FORM_SECS,
        path="/console/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/console/login", include_in_schema=False)
async def login_form(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    """The login form; a visitor already logged in goes straight on."""
    target = _next_page(next)
    if sessions.read_session(settings, request.cookies.get(sessions.COOKIE)) is not None:
        return RedirectResponse(target, status_code=303)
    return _login_page(request, settings, target, None, 200)


@router.post("/console/login", include_in_schema=False)
async def login(
    request: Request,
    settings: SettingsDep,
    key: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = HOME,
) -> Response:
    """Check the key: a session on success, a plain error after a fixed pause otherwise."""
    expected_csrf = sessions.login_csrf(settings, request.cookies.get(sessions.LOGIN_COOKIE))
    if expected_csrf is None or not secrets.compare_digest(csrf.encode(), expected_csrf.encode()):
        raise HTTPException(403, "Missing or wrong CSRF token: reload the login page")
    api_key = settings.dialout_api_key
    assert api_key is not None  # the console is only installed with a key
    if not secrets.compare_digest(key.encode(), api_key.get_secret_value().encode()):
        peer = request.client.host if request.client else "?"
        logger.warning(f"Console login refused: wrong key, from {peer}")
        await asyncio.sleep(LOGIN_FAILURE_DELAY_SECS)
        return _login_page(request, settings, _next_page(next), "Wrong key.", 401)
    response = RedirectResponse(_next_page(next), status_code=303)
    response.set_cookie(
        sessions.COOKIE,
        sessions.new_session(settings),
        max_age=sessions.SESSION_SECS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/console/login")
    return response


@router.post("/console/logout", include_in_schema=False)
async def logout(_session: CsrfDep) -> Response:
    """End the session: its cookie is dropped."""
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response
