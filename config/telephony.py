"""The telephony settings, mixed into `settings.Settings` (one class, read and validated there).

Twilio's and Exotel's credentials: who may open a media stream, and what the
server needs to talk to their REST APIs.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Self

from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

TWILIO_API_HOST = "https://api.twilio.com"
MIN_STREAM_SECRET_LENGTH = 16


class TelephonySettings(BaseModel):
    """Twilio (webhook and stream signatures, REST host) and Exotel (stream access, REST)."""

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_phone_number: str | None = None
    twilio_api_base_url: AnyHttpUrl = AnyHttpUrl(TWILIO_API_HOST)
    twilio_validate_signatures: bool = True
    # A regional host, api.{edge}.{region}.twilio.com (regional auth tokens differ).
    twilio_region: str | None = Field(None, pattern=r"^[a-z]{2}\d$")
    twilio_edge: str | None = Field(None, pattern=r"^[a-z-]+$")
    # Signs each media stream's parameters (telephony/stream_token.py); every replica shares it.
    # Unset: derived from TWILIO_AUTH_TOKEN while signatures are checked.
    stream_secret: SecretStr | None = None
    # Seconds a stream token stays good between the webhook and the stream's start.
    stream_token_ttl: int = Field(300, ge=10, le=3600)

    # Exotel: who may open /ws as Exotel's Voicebot applet, and the REST API for dial-out.
    exotel_ws_username: str | None = None
    exotel_ws_password: SecretStr | None = None
    exotel_allowed_ips: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    exotel_trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    exotel_api_key: str | None = None
    exotel_api_token: SecretStr | None = None
    exotel_account_sid: str | None = None
    exotel_caller_id: str | None = None
    exotel_api_base_url: AnyHttpUrl = AnyHttpUrl("https://api.in.exotel.com")

    @field_validator("exotel_allowed_ips", "exotel_trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        # A bare address is a network of one: "203.0.113.7" means 203.0.113.7/32.
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("twilio_account_sid")
    @classmethod
    def _account_sid_shape(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("AC") and len(value) == 34):
            raise ValueError("must look like AC followed by 32 hex characters")
        return value

    @field_validator("stream_secret")
    @classmethod
    def _long_stream_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_STREAM_SECRET_LENGTH:
            length = MIN_STREAM_SECRET_LENGTH
            raise ValueError(f"must be at least {length} characters (`openssl rand -hex 32`)")
        return value

    @model_validator(mode="after")
    def _exotel_credentials_in_pairs(self) -> Self:
        if (self.exotel_ws_username is None) != (self.exotel_ws_password is None):
            raise ValueError("set both EXOTEL_WS_USERNAME and EXOTEL_WS_PASSWORD, or neither")
        return self

    @model_validator(mode="after")
    def _one_twilio_host(self) -> Self:
        if (self.twilio_region is None) != (self.twilio_edge is None):
            raise ValueError("set both TWILIO_REGION and TWILIO_EDGE (e.g. ie1, dublin) or neither")
        if self.twilio_region and str(self.twilio_api_base_url).rstrip("/") != TWILIO_API_HOST:
            raise ValueError("set TWILIO_REGION and TWILIO_EDGE, or TWILIO_API_BASE_URL: not both")
        return self

    @property
    def validates_signatures(self) -> bool:
        """Whether Twilio's `X-Twilio-Signature` is checked on webhooks and the websocket."""
        return self.twilio_validate_signatures and self.twilio_auth_token is not None

    @property
    def can_hang_up(self) -> bool:
        """Whether the server holds the credentials to end calls through Twilio's REST API."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def exotel_authenticates(self) -> bool:
        """Whether Exotel streams on /ws need Basic credentials or an allowed address."""
        return self.exotel_ws_username is not None or bool(self.exotel_allowed_ips)

    @property
    def can_dial_exotel(self) -> bool:
        """Whether the server holds what Exotel's connect API needs to place calls."""
        return bool(
            self.exotel_api_key
            and self.exotel_api_token
            and self.exotel_account_sid
            and self.exotel_caller_id
        )
