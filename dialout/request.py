"""The body of `POST /dialout` and its answer, validated before any provider is asked."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from telephony.call_info import RESERVED_PARAMETERS

# E.164, ASCII digits only (a Unicode-aware \d would let other scripts' digits through).
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
# XML 1.0 cannot carry these characters at all, escaped or not.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MAX_PARAMETERS = 32
MAX_PARAMETER_VALUE = 1000


class DialoutRequest(BaseModel):
    """The body of `POST /dialout`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    provider: str = Field(
        "twilio",
        description="Who places the call: twilio or exotel.",
        json_schema_extra={"enum": ["twilio", "exotel"]},
    )
    to: str = Field(
        description="The number to call, E.164, e.g. +15551234567.",
        json_schema_extra={"pattern": f"^{E164.pattern}$"},
    )
    from_: str | None = Field(
        None,
        alias="from",
        description="Caller id, E.164; default TWILIO_PHONE_NUMBER (EXOTEL_CALLER_ID).",
        json_schema_extra={"pattern": f"^{E164.pattern}$"},
    )
    parameters: dict[str, str] = Field(
        default_factory=dict,
        description="Data for the bot (customer id, campaign, `greeting`, `system_prompt`).",
        json_schema_extra={
            "maxProperties": MAX_PARAMETERS,
            "propertyNames": {
                "pattern": f"^{PARAMETER_NAME.pattern}$",
                "not": {"enum": list[JsonValue](sorted(RESERVED_PARAMETERS))},
            },
            "additionalProperties": {
                "type": "string",
                "maxLength": MAX_PARAMETER_VALUE,
                "pattern": "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\ufffe\\uffff]*$",
            },
        },
    )
    assistant: str | None = Field(
        None, max_length=64, description="The assistant that talks to the callee; else the default."
    )
    machine_detection: Literal["Enable", "DetectMessageEnd"] | None = None
    timeout: int | None = Field(None, ge=5, le=600, description="Seconds to let it ring.")
    time_limit: int | None = Field(None, ge=1, le=14400, description="Longest call, seconds.")
    record: bool | None = None

    @field_validator("to", "from_")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not E164.fullmatch(value):
            raise ValueError(f"{value!r} is not an E.164 number like +15551234567")
        return value

    @field_validator("parameters")
    @classmethod
    def _sane_parameters(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_PARAMETERS:
            raise ValueError(f"at most {MAX_PARAMETERS} parameters")
        for name, text in value.items():
            if not PARAMETER_NAME.fullmatch(name):
                raise ValueError(
                    f"parameter name {name[:80]!r} must be 1-64 letters, digits, '_', '.' "
                    "or '-', starting with a letter"
                )
            if name in RESERVED_PARAMETERS:
                raise ValueError(f"parameter name {name!r} is reserved for the server")
            if len(text) > MAX_PARAMETER_VALUE:
                raise ValueError(f"parameter {name!r} is over {MAX_PARAMETER_VALUE} characters")
            if NOT_XML.search(text):
                raise ValueError(f"parameter {name!r} holds control characters")
        return value


class DialoutAnswer(BaseModel):
    """The answer to a placed call."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    call_sid: str
    status: str
    to: str
    from_: str = Field(alias="from")
    status_url: str
