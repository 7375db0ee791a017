"""The writes of a call's transfer: where it went, and how the dial ended.

A mixin of `CallStore` (it gives them `_change`, which locks the call's row and
writes the change's event in the same transaction).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from records.models import Call
from records.outbox import Emitted


class TransferWrites:
    """Transfer writes of `CallStore`."""

    _change: Callable[..., Awaitable[Call | None]]

    async def transferred(self, call_sid: str, details: Mapping[str, Any]) -> None:
        """The call was handed to a target (`details`: `target`, `to`, `status`, `summary`).

        Its `call.transferred` event goes out with them, but for the whisper's
        `summary`, which stays on the record (where the whisper URL reads it).
        """
        at = datetime.now(UTC)

        def note(call: Call) -> Emitted:
            call.transfer_target = details.get("target")
            call.transfer_to = details.get("to")
            call.transfer_status = details.get("status")
            call.transfer_summary = details.get("summary")
            call.transferred_at = at
            return "call.transferred", {k: v for k, v in details.items() if k != "summary"}

        await self._change(call_sid, note, at)

    async def transfer_ended(
        self, call_sid: str, status: str, details: Mapping[str, Any] | None = None
    ) -> Call | None:
        """The transfer's dial ended (`status`: Twilio's `DialCallStatus`), or was refused.

        Its `call.transfer_ended` event carries the target and `details`.

        Returns:
            The call's record; None when it is not on record.
        """

        def note(call: Call) -> Emitted:
            call.transfer_status = status
            event = {"target": call.transfer_target, "to": call.transfer_to, "status": status}
            return "call.transfer_ended", event | dict(details or {})

        return await self._change(call_sid, note, None, create=False)
