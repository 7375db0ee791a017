"""The transfer settings, mixed into `settings.Settings` (one class, read and validated there).

    TRANSFER_TARGETS=sales=+15551230001,support=+15551230002
    TRANSFER_WHISPER=true

Targets are named: the LLM (and the API) pick a name, never a number, so no
prompt can send a call to a number nobody configured. A call's own
`transfer_targets` parameter is written the same way (`parse_targets`).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

TARGET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
MAX_TARGETS = 20


def parse_targets(value: object) -> dict[str, str]:
    """Targets from `name=+E164,name2=+E164` (or a mapping), checked.

    Raises:
        ValueError: A name or number that does not fit, a repeated name, or too many.
    """
    if isinstance(value, str):
        pairs = []
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            name, sep, number = item.partition("=")
            if not sep:
                raise ValueError(f"{item[:80]!r} is not name=+number")
            pairs.append((name.strip(), number.strip()))
    elif isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        raise ValueError("transfer targets are name=+number pairs, comma-separated")
    targets: dict[str, str] = {}
    for name, number in pairs:
        if not TARGET_NAME.fullmatch(name):
            raise ValueError(f"target name {name[:80]!r}: letters, digits, '_' or '-'")
        if not E164.fullmatch(number):
            raise ValueError(f"target {name}: {number[:40]!r} is not an E.164 number")
        if name in targets:
            raise ValueError(f"target {name} is named twice")
        targets[name] = number
    if len(targets) > MAX_TARGETS:
        raise ValueError(f"at most {MAX_TARGETS} transfer targets")
    return targets


class TransferSettings(BaseModel):
    """Transfers to a human: where calls may go, and whether the agent hears a whisper first.

    Attributes:
        transfer_targets: Named numbers calls may be transferred to (empty: none).
        transfer_whisper: The agent who answers hears who is calling and why, before
            being connected (a summary of the conversation).
    """

    transfer_targets: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    transfer_whisper: bool = False

    @field_validator("transfer_targets", mode="before")
    @classmethod
    def _parse(cls, value: object) -> dict[str, str]:
        return parse_targets(value)
