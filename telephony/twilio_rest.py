"""One way to reach Twilio's REST API, for every request this server makes.

Dial-out, recording and (through Pipecat's serializer) hang-up all go to the
same host: `api.{edge}.{region}.twilio.com` when `TWILIO_REGION` and
`TWILIO_EDGE` are set, else `TWILIO_API_BASE_URL` (api.twilio.com by default).
A regional host takes the auth token of that region.
"""

from __future__ import annotations

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from config.telephony import TWILIO_API_HOST
from settings import Settings


def api_base(settings: Settings) -> str:
    """The REST root every Twilio request goes to, e.g. `https://api.dublin.ie1.twilio.com`."""
    if settings.twilio_region:
        return f"https://api.{settings.twilio_edge}.{settings.twilio_region}.twilio.com"
    return str(settings.twilio_api_base_url).rstrip("/")


def rest_client(settings: Settings) -> tuple[Client, AsyncTwilioHttpClient]:
    """twilio-python's client for the account, on its async HTTP client (close that one).

    Raises:
        ValueError: The settings hold no account SID or auth token.
    """
    token = settings.twilio_auth_token
    if not settings.twilio_account_sid or token is None:
        raise ValueError("Twilio's REST API needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    # No retries: a create that timed out may have done its work.
    http = AsyncTwilioHttpClient()
    client = Client(settings.twilio_account_sid, token.get_secret_value(), http_client=http)
    # The client reads TWILIO_REGION/TWILIO_EDGE from the environment itself: set both ways.
    client.region, client.edge = settings.twilio_region, settings.twilio_edge
    base = str(settings.twilio_api_base_url).rstrip("/")
    if not settings.twilio_region and base != TWILIO_API_HOST:
        client.api.base_url = base  # another host: no regional rewriting
    return client, http
