"""Call control of a call this replica does not hold: by call SID, through Twilio's REST API.

    await transfer_elsewhere(settings, store, record, "sales")   `<Dial>`, no handoff line
    await hang_up_elsewhere(settings, store, record)             `Status=completed`

The replica that holds the stream sees Twilio end it, and the record says why
(`transferred`: its transfer is `dialing`; `ended_by_api`: written here first).
An Exotel stream can be closed only by the replica that holds it: 409.
"""

from __future__ import annotations

from bot import EndReason
from records.models import Call
from records.store import CallStore
from settings import Settings
from telephony import twilio
from transfer.errors import NotTransferable, TransferRefused, UnknownTarget
from transfer.handoff import targets_for
from transfer.links import dial_result_url, whisper_url
from transfer.summary import summarize
from transfer.twilio import caller_id, dial_twiml, update_call
from urls import configured_base


def _only_twilio(record: Call, what: str) -> None:
    if record.provider != twilio.NAME:
        raise NotTransferable(
            f"Call {record.sid} runs on another replica: a {record.provider} call can be "
            f"{what} only by the replica that holds its stream"
        )


async def transfer_elsewhere(
    settings: Settings, store: CallStore, record: Call, name: str
) -> dict[str, str]:
    """Transfer a Twilio call held by another replica to the target `name`.

    Raises:
        UnknownTarget: `name` is not one of the call's targets (no request is made).
        NotTransferable: Not a Twilio call, or no PUBLIC_URL for Twilio to come back to.
        TransferRefused: Twilio refused the update.
    """
    number = targets_for(record.parameters or {}, settings).get(name)
    if number is None:
        raise UnknownTarget(f"No transfer target named {name!r} for call {record.sid}")
    _only_twilio(record, "transferred")
    if (base := configured_base(settings)) is None:
        raise NotTransferable("Transferring a call held elsewhere needs PUBLIC_URL")
    details = {"target": name, "to": number, "status": "dialing"}
    whisper = None
    if settings.transfer_whisper:
        turns = [(t.role, t.text) for t in record.turns if t.role in ("user", "assistant")]
        details["summary"] = await summarize(settings, turns, name, None)
        whisper = whisper_url(base, settings, record.sid)
    twiml = dial_twiml(
        number,
        caller=caller_id(record.direction or "", record.from_number or "", record.to_number or ""),
        action=dial_result_url(base, name, (record.legs or 1) + 1),
        whisper_url=whisper,
    )
    # On record first: the whisper reads the summary, and the holder's stream end reads
    # `dialing` as a transfer.
    await store.transferred(record.sid, details)
    try:
        await update_call(settings, record.sid, twiml=twiml)
    except TransferRefused as e:
        await store.transfer_ended(record.sid, "refused", {"code": e.code, "reason": e.reason})
        raise
    details.pop("summary", None)
    return details


async def hang_up_elsewhere(settings: Settings, store: CallStore, record: Call) -> None:
    """Hang up a Twilio call held by another replica.

    Raises:
        NotTransferable: Not a Twilio call.
        TransferRefused: Twilio refused (e.g. the call has already ended).
    """
    _only_twilio(record, "hung up")
    await update_call(settings, record.sid, status="completed")
    await store.end_call(record.sid, EndReason.ENDED_BY_API)
