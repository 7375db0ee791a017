"""Which provider's stream an upgrade to /ws may carry, judged before and after `start`.

Twilio signs the upgrade (`X-Twilio-Signature`); Exotel sends the applet URL's
Basic credentials, or comes from an allowed address. Before `start` the upgrade's
credentials decide which providers it is admitted as, and bad credentials are
refused at once; once `start` names the provider, it must be one of those.

Exotel streams with no credentials configured for them are admitted only while
Twilio's signatures are not checked either: setting `TWILIO_AUTH_TOKEN` does not
leave a way in through Exotel.
"""

from __future__ import annotations

from starlette.datastructures import Headers

from settings import Settings
from telephony import exotel, twilio
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
    exotel_ok = not exotel_barred and exotel.upgrade_is_authorized(client_host, headers, settings)
    if exotel.claims_exotel(headers):
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
