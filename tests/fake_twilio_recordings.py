"""Twilio's call recordings, in the fake: started by a Calls create (`Record=true`) or by
`POST …/Calls/{CallSid}/Recordings.json`, reported by a signed RecordingStatusCallback when
the test says the recording is done, and served as a dual-channel WAV with byte ranges."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np
from aiohttp import web
from twilio.request_validator import RequestValidator

from recording.wav import header

if TYPE_CHECKING:
    from tests.fake_twilio import FakeTwilio

Answer = tuple[int, dict[str, Any]]
EVENTS = frozenset({"in-progress", "completed", "absent"})
RATE = 8000
BYTE_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def _error(code: int, message: str) -> Answer:
    return 400, {"code": code, "message": message, "status": 400}


def recording_problem(form: list[tuple[str, str]]) -> Answer | None:
    """What Twilio would refuse in a request's recording fields, or None."""
    fields = dict(form)
    if fields.get("RecordingChannels", "mono") not in ("mono", "dual"):
        return _error(21220, f"Invalid RecordingChannels: {fields['RecordingChannels']}")
    callback = fields.get("RecordingStatusCallback")
    if callback is not None and not (
        urlsplit(callback).scheme in ("http", "https") and urlsplit(callback).netloc
    ):
        return _error(21609, f"Invalid RecordingStatusCallback URL: {callback}")
    for event in (v for k, v in form if k == "RecordingStatusCallbackEvent"):
        if event not in EVENTS:
            return _error(21220, f"Invalid RecordingStatusCallbackEvent: {event}")
    if fields.get("RecordingStatusCallbackMethod", "POST") not in ("GET", "POST"):
        return _error(21220, "Invalid RecordingStatusCallbackMethod")
    return None


@dataclass
class FakeRecording:
    """One recording the fake made, and where it reports."""

    sid: str
    call_sid: str
    channels: str
    callback: str | None
    events: list[str]
    duration: int = 0


class FakeRecordings:
    """The recordings of a `FakeTwilio` (its lock held by `start`)."""

    def __init__(self, fake: FakeTwilio) -> None:
        self._fake = fake
        self._items: dict[str, FakeRecording] = {}

    def start(self, call_sid: str, form: list[tuple[str, str]]) -> Answer:
        """Start recording a call; Twilio's `Recording` resource, or its error."""
        if problem := recording_problem(form):
            return problem
        fields = dict(form)
        sid = "RE" + secrets.token_hex(16)
        events = [v for k, v in form if k == "RecordingStatusCallbackEvent"] or ["completed"]
        channels = fields.get("RecordingChannels", "mono")
        callback = fields.get("RecordingStatusCallback")
        self._items[sid] = FakeRecording(sid, call_sid, channels, callback, events)
        account = self._fake.account_sid
        return 201, {
            "account_sid": account,
            "api_version": "2010-04-01",
            "call_sid": call_sid,
            "sid": sid,
            "status": "in-progress",
            "channels": 2 if channels == "dual" else 1,
            "source": "StartCallRecordingAPI",
            "uri": f"/2010-04-01/Accounts/{account}/Calls/{call_sid}/Recordings/{sid}.json",
        }

    def of(self, call_sid: str) -> list[FakeRecording]:
        """The recordings of a call, oldest first."""
        with self._fake._lock:
            return [r for r in self._items.values() if r.call_sid == call_sid]

    async def report_completed(
        self, call_sid: str, duration: int, auth_token: str | None = None
    ) -> list[int]:
        """The call's recordings are done: POST each one's signed callback; the answers."""
        statuses = []
        for recording in self.of(call_sid):
            recording.duration = duration
            if recording.callback is None or "completed" not in recording.events:
                continue
            account = self._fake.account_sid
            form = {
                "AccountSid": account,
                "CallSid": call_sid,
                "RecordingSid": recording.sid,
                "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{account}"
                f"/Recordings/{recording.sid}",
                "RecordingStatus": "completed",
                "RecordingDuration": str(duration),
                "RecordingChannels": "2" if recording.channels == "dual" else "1",
                "RecordingSource": "StartCallRecordingAPI",
                "ErrorCode": "0",
            }
            token = auth_token or self._fake.auth_token
            signature = RequestValidator(token).compute_signature(recording.callback, form)
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    recording.callback, data=form, headers={"X-Twilio-Signature": signature}
                ) as answer,
            ):
                statuses.append(answer.status)
        return statuses

    async def media(self, request: web.Request) -> web.StreamResponse:
        """`GET …/Recordings/{Sid}.wav`: the recording, whole or a byte range."""
        match = re.search(r"/Accounts/([^/]+)/Recordings/(RE[0-9a-f]{32})\.wav$", request.path)
        assert match is not None
        authorized = self._fake._authorized(request.headers.get("Authorization"), match[1])
        with self._fake._lock:
            recording = self._items.get(match[2])
        if not authorized:
            return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)
        if recording is None:
            return web.json_response({"code": 20404, "message": "Not found"}, status=404)
        samples = np.zeros((recording.duration * RATE, 2), dtype="<i2")
        samples[:, 0], samples[:, 1] = 1000, 2000  # caller left, bot right
        body = header(RATE, 2, samples.nbytes) + samples.tobytes()
        asked = BYTE_RANGE.fullmatch(request.headers.get("Range", ""))
        if asked is None:
            return web.Response(body=body, content_type="audio/x-wav")
        first = int(asked[1])
        last = min(int(asked[2]) if asked[2] else len(body) - 1, len(body) - 1)
        return web.Response(
            body=body[first : last + 1],
            status=206,
            content_type="audio/x-wav",
            headers={"Content-Range": f"bytes {first}-{last}/{len(body)}"},
        )
