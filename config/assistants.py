"""The assistants settings, mixed into `settings.Settings` (one class, read and validated there).

The assistants file, and what assistants reach: HTTP tools and event webhooks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import AnyHttpUrl, BaseModel, model_validator

from tools.signing import SigningSecret


class AssistantsSettings(BaseModel):
    """Assistants (assistants/), HTTP tools (tools/) and event webhooks (events/)."""

    assistants_file: Path | None = None
    events_url: AnyHttpUrl | None = None
    webhook_secret: SigningSecret | None = None
    tools_allow_private: bool = False

    @model_validator(mode="after")
    def _events_are_signed(self) -> Self:
        if self.events_url is not None and self.webhook_secret is None:
            raise ValueError("EVENTS_URL is set: WEBHOOK_SECRET must be set too, to sign events")
        return self
