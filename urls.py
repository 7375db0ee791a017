"""Where Twilio and Exotel reach this server, and the URLs their signatures cover.

Used alike by the webhook, the media stream and dial-out, so the URL Twilio is
told and the URL a signature is checked against are built in one place.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from settings import Settings


def public_base(connection: HTTPConnection, settings: Settings) -> str:
    """Where Twilio reaches this server: `PUBLIC_URL`, else the request's own host.

    Behind a proxy (ngrok, a load balancer) the scheme comes from `X-Forwarded-Proto`.
    Only for answering a request (TwiML, the URL a signature covers): dial-out uses
    `configured_base`.
    """
    if (base := configured_base(settings)) is not None:
        return base
    headers = connection.headers
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip()
    if not proto:
        proto = "https" if connection.url.scheme in ("https", "wss") else "http"
    host = headers.get("x-forwarded-host") or headers.get("host", "localhost")
    return f"{proto}://{host}"


def configured_base(settings: Settings) -> str | None:
    """`PUBLIC_URL`, never a request's headers: where dial-out tells the providers to reach us."""
    return None if settings.public_url is None else str(settings.public_url).rstrip("/")


def stream_url(base: str) -> str:
    """The Media Stream url for a public base URL: always `wss://HOST/ws`, no query string.

    Args:
        base: Where Twilio reaches this server, e.g. `https://abc.ngrok.app`.
    """
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    return f"wss://{parts.netloc}{path}/ws"


def signed_url(connection: HTTPConnection, settings: Settings) -> str:
    """The full public URL Twilio requested, which its `X-Twilio-Signature` covers."""
    query = connection.url.query
    return public_base(connection, settings) + connection.url.path + (f"?{query}" if query else "")
