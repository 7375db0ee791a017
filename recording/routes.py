"""GET /calls/{call_sid}/recording: a call's recording, with HTTP ranges (an `<audio>` seeks);
POST /recording-status: Twilio's word on a recording it made (RECORDING=twilio).

The record says where the recording is: a WAV in `RECORDINGS_DIR`, an object
in S3 (streamed through this server, so the bucket stays private), or Twilio's
recording (fetched with the account's credentials). Needs the API key, as the
call records do.

    200  the whole WAV          206  the range asked for (`Range: bytes=…`)
    404  no such call, no recording, or the recording is gone (retention)
    416  a range outside the recording
    502  the store or Twilio failed
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from loguru import logger

from deps import KEY_REFUSED, RecordingsDep, RecordsDep, SettingsDep, refusal, require_api_key
from recording.store import S3Store
from recording.twilio import RECORDING_SID, RECORDING_STATUS_PATH, SOURCE, TwilioMedia
from telephony.callbacks import NO_CONTENT, RECORDING_STATUS_CALLBACK, TWILIO_SIGNED
from telephony.twilio import unsigned_refusal

WAV = "audio/wav"
BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

router = APIRouter(prefix="/calls", tags=["calls"], dependencies=[Depends(require_api_key)])
callbacks = APIRouter()


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range `header` asks for, as (first, last) inclusive; None for the whole.

    Several ranges at once are answered whole, as HTTP allows.

    Raises:
        HTTPException: 416 for a range that lies outside `size` bytes.
    """
    match = BYTE_RANGE.fullmatch(header.strip()) if header else None
    if match is None or match[1] == match[2] == "":
        return None
    if match[1] == "":  # the last N bytes
        first, last = max(size - int(match[2]), 0), size - 1
    else:
        first = int(match[1])
        last = min(int(match[2]), size - 1) if match[2] else size - 1
    if first >= size or first > last:
        raise HTTPException(416, "Range not satisfiable", {"Content-Range": f"bytes */{size}"})
    return first, last


def partial(chunks: AsyncIterator[bytes], size: int, asked: tuple[int, int] | None) -> Response:
    """A 200 or 206 answer streaming `chunks` (the bytes `asked` for, or all)."""
    first, last = asked or (0, size - 1)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(last - first + 1)}
    if asked is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(
        chunks, status_code=206 if asked else 200, media_type=WAV, headers=headers
    )


@router.get(
    "/{call_sid}/recording",
    response_class=Response,
    responses={
        **KEY_REFUSED,
        200: {"description": "The whole recording", "content": {WAV: {}}},
        206: {"description": "The range asked for", "content": {WAV: {}}},
        404: refusal("No such call, or it has no recording"),
        416: refusal("A range outside the recording"),
        502: refusal("The recording store or Twilio failed"),
    },
)
async def get_recording(
    call_sid: str,
    request: Request,
    records: RecordsDep,
    recordings: RecordingsDep,
    settings: SettingsDep,
) -> Response:
    """The call's recording as a WAV (caller left, bot right), whole or a range of it."""
    call = await records.store.get_call(call_sid)
    if call is None:
        raise HTTPException(404, f"No call {call_sid} is on record")
    location, source = call.recording_location, call.recording_source
    if not location or not source:
        raise HTTPException(404, f"Call {call_sid} has no recording")
    if source == "twilio":
        return await TwilioMedia(settings).relay(
            call.recording_sid or "", request.headers.get("range")
        )
    store = recordings.store
    if path := store.path(location):
        return FileResponse(path, media_type=WAV, filename=path.name)
    if not isinstance(store, S3Store) or (key := store.key_of(location)) is None:
        raise HTTPException(404, f"The recording of {call_sid} is gone")
    try:
        size = await store.size(key)
    except Exception as e:
        logger.error(f"Recording: object storage failed: {e}")
        raise HTTPException(502, "The recording store failed") from None
    if size is None:
        raise HTTPException(404, f"The recording of {call_sid} is gone")
    asked = byte_range(request.headers.get("range"), size)
    first, last = asked or (0, size - 1)
    return partial(store.read(key, first, last), size, asked)


@callbacks.post(
    RECORDING_STATUS_PATH,
    status_code=204,
    response_class=Response,
    responses={204: NO_CONTENT, **TWILIO_SIGNED},
    openapi_extra=RECORDING_STATUS_CALLBACK,
)
async def recording_status(
    request: Request, settings: SettingsDep, records: RecordsDep
) -> Response:
    """Twilio's word on a recording: once `completed`, keep its SID, URL and duration."""
    if (refusal := await unsigned_refusal(request, settings, "Recording callback")) is not None:
        return refusal
    form = await request.form()
    call_sid, sid = str(form.get("CallSid", "")), str(form.get("RecordingSid", ""))
    status, url = str(form.get("RecordingStatus", "")), str(form.get("RecordingUrl", ""))
    if not call_sid or not RECORDING_SID.fullmatch(sid) or not status:
        return Response(
            "CallSid, RecordingSid and RecordingStatus are required", 400, media_type="text/plain"
        )
    with logger.contextualize(call_sid=call_sid):
        if status != "completed":
            logger.warning(f"Twilio's recording {sid} is {status}: there is no recording")
            return Response(status_code=204)
        try:
            duration = float(str(form.get("RecordingDuration", "")))
        except ValueError:
            duration = None
        await records.store.set_recording(call_sid, SOURCE, url or sid, duration, sid)
        logger.info(f"Twilio's recording {sid} is ready ({duration} s)")
    return Response(status_code=204)
