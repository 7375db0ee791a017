"""Rendering the console's pages: Jinja2 with autoescape on, and the filters they share.

Every value a template prints is escaped unless a template says otherwise (only
the server-built SVG charts do), so what a caller said shows as text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from console.session import Session

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"

NAV = (
    ("live", "Live", "/console"),
    ("calls", "Calls", "/console/calls"),
    ("overview", "Overview", "/console/overview"),
    ("place", "Place a call", "/console/place"),
    ("talk", "Talk to the bot", "/console/talk"),
)


def clock(moment: datetime | str | None) -> str:
    """A moment as `2026-11-29 14:03:07 UTC`."""
    if moment is None:
        return "–"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(value: float | None) -> str:
    """A duration as `4 s`, `2 min 05 s` or `1 h 02 min`."""
    if value is None:
        return "–"
    total = max(0, round(value))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def milliseconds(value: float | None) -> str:
    """A latency as `640 ms` or `1.25 s`."""
    if value is None:
        return "–"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"


templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)
templates.env.filters.update(clock=clock, seconds=seconds, ms=milliseconds)


def render(
    request: Request,
    template: str,
    session: Session | None,
    *,
    page: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render one of the console's pages, with the navigation and the CSRF token."""
    return templates.TemplateResponse(
        request,
        template,
        {
            "nav": NAV,
            "page": page,
            "csrf": session.csrf if session else "",
            "logged_in": session is not None,
            **context,
        },
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )


# The pages load only their own scripts and styles, and are never framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
