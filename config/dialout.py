"""The dial-out settings, mixed into `settings.Settings` (one class, read and validated there)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

# A dial-out destination prefix: "+" and 1 to 15 digits.
DIALOUT_PREFIX = re.compile(r"\+[0-9]{1,15}")
MIN_DIALOUT_KEY_LENGTH = 16


class DialoutSettings(BaseModel):
    """The HTTP API's key (dial-out, call records, the console) and where calls may go."""

    dialout_api_key: SecretStr | None = None
    dialout_allowed_prefixes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # How long to wait for the provider's answer to placing a call; past it the call may exist.
    dialout_request_timeout: float = Field(15.0, gt=0, le=60)

    @field_validator("dialout_allowed_prefixes", mode="before")
    @classmethod
    def _split_prefixes(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("dialout_allowed_prefixes")
    @classmethod
    def _prefixes_are_numbers(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not DIALOUT_PREFIX.fullmatch(prefix):
                raise ValueError(f"{prefix!r} is not a number prefix like +1 or +4420")
        return value

    @field_validator("dialout_api_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_DIALOUT_KEY_LENGTH:
            length = MIN_DIALOUT_KEY_LENGTH
            raise ValueError(f"must be at least {length} characters (`openssl rand -hex 32`)")
        return value
