"""Standard Webhooks signatures on what Switchboard sends out: tool requests and events.

Every request carries `webhook-id`, `webhook-timestamp` and `webhook-signature`
(HMAC-SHA256 over `id.timestamp.body`), made with the `standardwebhooks`
library, so a receiver verifies it with any Standard Webhooks library. The id
stays the same when a request is retried, for the receiver's deduplication.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, SecretStr
from standardwebhooks import Webhook

# Standard Webhooks secrets hold 24 to 64 random bytes.
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
SECRET_PREFIX = "whsec_"


def check_secret(secret: str) -> None:
    """Check a signing secret's shape: base64 of 24 to 64 bytes, optionally after `whsec_`.

    Raises:
        ValueError: It is not; the message never holds the secret.
    """
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64, e.g. whsec_ + `openssl rand -base64 32`") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes "
            "(whsec_ + `openssl rand -base64 32`)"
        )


def _checked(secret: SecretStr) -> SecretStr:
    check_secret(secret.get_secret_value())
    return secret


# A setting that holds a signing secret, checked at start-up.
SigningSecret = Annotated[SecretStr, AfterValidator(_checked)]


def new_message_id() -> str:
    """A unique `webhook-id`."""
    return f"msg_{uuid.uuid4().hex}"


class Signer:
    """Signs request bodies with one secret."""

    def __init__(self, secret: str) -> None:
        """Sign with `secret` (checked with `check_secret` first)."""
        self._webhook = Webhook(secret)

    def headers(self, message_id: str, body: str) -> dict[str, str]:
        """The headers of a signed JSON request: signed now, as Standard Webhooks says."""
        now = datetime.now(UTC)
        return {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._webhook.sign(message_id, now, body),
        }
