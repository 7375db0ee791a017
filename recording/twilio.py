"""RECORDING=twilio: Twilio records the call in two channels; its callback says where.

    start_recording(...)     asks Twilio to record a call whose stream started
    TwilioMedia.relay(...)   GET /calls/{sid}/recording for a Twilio recording

Twilio reports the recording at POST /recording-status (`recording.routes`).

A call this server placed is recorded from its creation (`Record=true` on the
Calls create, see `dialout.twilio`), so only other calls are started here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import aiohttp
from fastapi import HTTPException, Response
from fastapi.responses import StreamingResponse
from loguru import logger
from twilio.base.exceptions import TwilioException, TwilioRestException

from settings import Settings
from telephony.twilio_rest import api_base, rest_client

RECORDING_STATUS_PATH = "/recording-status"
CALLBACK_EVENTS = ("completed", "absent")
RECORDING_SID = re.compile(r"RE[0-9a-f]{32}")
SOURCE = "twilio"
REQUEST_TIMEOUT_SECS = 15.0
RELAYED_HEADERS = ("Content-Length", "Content-Range", "Accept-Ranges", "Content-Type")


def status_callback(base: str) -> str:
    """Where Twilio reports a recording of this server's, for a public base URL."""
    return f"{base}{RECORDING_STATUS_PATH}"


def recording_fields(base: str) -> dict[str, object]:
    """What asks Twilio for a dual-channel recording reported to this server (snake_case)."""
    return {
        "recording_channels": "dual",
        "recording_status_callback": status_callback(base),
        "recording_status_callback_event": list(CALLBACK_EVENTS),
        "recording_status_callback_method": "POST",
    }


async def start_recording(settings: Settings, call_sid: str, base: str) -> None:
    """Ask Twilio to record the call, both sides; failures are logged, the call goes on."""
    try:
        client, http = rest_client(settings)
    except ValueError as e:
        logger.error(f"Recording: {e}")
        return
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_SECS):
            recording = await client.calls(call_sid).recordings.create_async(
                **recording_fields(base)  # type: ignore[arg-type]
            )
        logger.info(f"Twilio is recording the call ({recording.sid})")
    except TwilioRestException as e:
        logger.error(f"Twilio did not start the recording: {e.msg} ({e.code})")
    except (TwilioException, aiohttp.ClientError, OSError, TimeoutError) as e:
        logger.error(f"Twilio did not start the recording: {type(e).__name__}: {e}")
    finally:
        await http.close()


class TwilioMedia:
    """Twilio's recordings, fetched with the account's credentials for the API's callers."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def relay(self, recording_sid: str, asked: str | None) -> Response:
        """The recording's WAV (or the range `asked`), streamed from Twilio.

        The URL is built from the SID and this server's Twilio host, never taken
        from a callback: the credentials go to Twilio only.
        """
        settings = self._settings
        token = settings.twilio_auth_token
        if not RECORDING_SID.fullmatch(recording_sid) or not token or not settings.can_hang_up:
            raise HTTPException(404, "The Twilio recording cannot be fetched by this server")
        url = (
            f"{api_base(settings)}/2010-04-01/Accounts/{settings.twilio_account_sid}"
            f"/Recordings/{recording_sid}.wav"
        )
        auth = aiohttp.BasicAuth(str(settings.twilio_account_sid), token.get_secret_value())
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=10))
        try:
            answer = await session.get(url, auth=auth, headers={"Range": asked} if asked else {})
        except (aiohttp.ClientError, OSError) as e:
            await session.close()
            logger.error(f"Recording: Twilio could not be reached: {e}")
            raise HTTPException(502, "Twilio could not be reached") from None
        if answer.status not in (200, 206):
            answer.release()
            await session.close()
            if answer.status == 404:
                raise HTTPException(404, "Twilio no longer has this recording")
            if answer.status == 416:
                raise HTTPException(416, "Range not satisfiable")
            raise HTTPException(502, f"Twilio answered {answer.status}")

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.content.iter_chunked(64 * 1024):
                    yield chunk
            finally:
                answer.release()
                await session.close()

        headers = {k: answer.headers[k] for k in RELAYED_HEADERS if k in answer.headers}
        return StreamingResponse(body(), status_code=answer.status, headers=headers)
