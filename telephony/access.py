"""Which provider's stream an upgrade to /ws may carry, judged before and after `start`.

Twilio signs the upgrade (`X-Twilio-Signature`); Exotel sends the applet URL's
Basic credentials, or comes from an allowed address; the console's browser calls
carry its session cookie (`browser.upgrade_is_authorized`). Before `start` the upgrade's
credentials decide which providers it is admitted as, and bad credentials are
refused at once; once `start` names the provider, it must be one of those.

Exotel streams with no credentials configured for them are admitted only while
Twilio's signatures are not checked either: setting `TWILIO_AUTH_TOKEN` does not
leave a way in through Exotel.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from ipaddress import IPv4Address, IPv6Address, ip_address

from starlette.datastructures import Headers

from settings import Settings
from telephony import browser, exotel, twilio
from telephony.call_info import CallInfo
from telephony.errors import Unauthorized


def admitted_providers(
    headers: Headers, client_host: str | None, twilio_url: str, settings: Settings
) -> frozenset[str]:
    """The providers whose streams this upgrade's credentials admit.

    Args:
        headers: The upgrade request's headers.
        client_host: The peer's address, as the server saw it.
        twilio_url: The public stream URL Twilio signs (`wss://HOST/ws`).
        settings: What to check: Twilio's auth token, Exotel's credentials and addresses.

    Raises:
        Unauthorized: The upgrade claims a provider and fails its check, or passes none.
    """
    if browser.claims_browser(headers):
        if not browser.upgrade_is_authorized(headers, settings, twilio_url):
            raise Unauthorized("invalid console session, or a page of another site")
        return frozenset({browser.NAME})
    signature = headers.get("x-twilio-signature")
    twilio_ok = not settings.validates_signatures or twilio.signature_is_valid(
        settings, twilio_url, {}, signature
    )
    if signature is not None:
        if not twilio_ok:
            raise Unauthorized("invalid signature")
        return frozenset({twilio.NAME})
    # A server that checks Twilio's signatures is not left open through Exotel:
    # unauthenticated Exotel streams are for servers that check nothing.
    exotel_barred = not settings.exotel_authenticates and settings.validates_signatures
    exotel_ok = not exotel_barred and upgrade_is_authorized(client_host, headers, settings)
    if claims_exotel(headers):
        if not exotel_ok:
            raise Unauthorized("invalid credentials")
        return frozenset({exotel.NAME})
    if exotel_barred:
        raise Unauthorized("invalid signature")
    admitted = frozenset(
        name for name, ok in ((twilio.NAME, twilio_ok), (exotel.NAME, exotel_ok)) if ok
    )
    if not admitted:
        raise Unauthorized("no credentials")
    return admitted


def confirm(call: CallInfo, admitted: frozenset[str]) -> None:
    """Check that the provider named by `start` is one the upgrade was admitted as.

    Raises:
        Unauthorized: A stream of another provider than its credentials vouch for.
    """
    if call.provider not in admitted:
        raise Unauthorized(f"no valid {call.provider} credentials")


def claims_exotel(headers: Headers) -> bool:
    """Whether an upgrade carries the Basic credentials Exotel sends from the applet URL."""
    return headers.get("authorization", "").lower().startswith("basic ")


def _basic_credentials(headers: Headers) -> tuple[bytes, bytes] | None:
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


def credentials_match(headers: Headers, settings: Settings) -> bool:
    """Whether the upgrade's `Authorization: Basic` header holds the configured credentials."""
    if settings.exotel_ws_username is None or settings.exotel_ws_password is None:
        return False
    given = _basic_credentials(headers) or (b"", b"")
    # Both halves are always compared, in constant time, so timing tells nothing.
    user_ok = hmac.compare_digest(given[0], settings.exotel_ws_username.encode())
    password = settings.exotel_ws_password.get_secret_value().encode()
    return user_ok & hmac.compare_digest(given[1], password)


def peer_address(
    client_host: str | None, headers: Headers, settings: Settings
) -> IPv4Address | IPv6Address | None:
    """The address a request came from.

    `X-Forwarded-For` counts only behind a proxy listed in `EXOTEL_TRUSTED_PROXIES`:
    the peer is then the right-most address in the chain that is not a trusted proxy.
    """
    try:
        peer = ip_address(client_host or "")
    except ValueError:
        return None
    trusted = settings.exotel_trusted_proxies
    if not any(peer in network for network in trusted):
        return peer
    forwarded = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([hop for hop in forwarded if hop]):
        try:
            address = ip_address(hop)
        except ValueError:
            return None
        if not any(address in network for network in trusted):
            return address
    return peer


def upgrade_is_authorized(client_host: str | None, headers: Headers, settings: Settings) -> bool:
    """Whether an upgrade may carry an Exotel stream: credentials and address, as configured.

    With neither `EXOTEL_WS_USERNAME`/`EXOTEL_WS_PASSWORD` nor `EXOTEL_ALLOWED_IPS`
    set, every upgrade may (the server warns about it at start-up; see `admitted_providers`
    for the one exception).
    """
    if settings.exotel_ws_username is not None and not credentials_match(headers, settings):
        return False
    if settings.exotel_allowed_ips:
        address = peer_address(client_host, headers, settings)
        if address is None or not any(address in net for net in settings.exotel_allowed_ips):
            return False
    return True
