"""`install(app, settings)`: the console's pages, static files and login redirects."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from console import auth, calls, live, overview, place, talk
from console.pages import STATIC
from console.session import LoginRequired, enabled
from settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the console under /console when the server has an API key; else nothing."""
    if not enabled(settings):
        return
    for module in (auth, live, calls, overview, place, talk):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(LoginRequired, _to_login)


async def _to_login(request: Request, _exc: Exception) -> Response:
    # Feeds and scripts get a 401 they can act on; a page goes to the login form.
    if "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"detail": "Log in to the console first"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/login?next={quote(target)}", status_code=303)
