"""A Twilio call moved on by updating it with TwiML, through the REST API by call SID.

    <Response>
      <Dial action="…/transfer/dial-result?target=sales&leg=2" callerId="+15550002222">
        <Number url="…/transfer/whisper?…">+15551230001</Number>
      </Dial>
    </Response>

Updating a live call's TwiML ends its media stream; `<Dial action>` runs when the
dialled leg ends. Works from any replica: the call SID is all Twilio needs.

Twilio's refusals (e.g. 21220 invalid call state, 13214 bad caller id) raise `TransferRefused`.
"""

from __future__ import annotations

import asyncio

import aiohttp
from loguru import logger
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.twiml.voice_response import Dial, VoiceResponse

from settings import Settings
from telephony.twilio_rest import rest_client
from transfer.errors import TransferRefused

REQUEST_TIMEOUT_SECS = 15.0


def caller_id(direction: str, from_number: str, to_number: str) -> str:
    """The Twilio number on the call, which Twilio accepts as the dial's caller id.

    An inbound call rang our number (`to`); a call we placed came from it (`from`).
    Never the caller's own number: Twilio refuses a caller id the account does not own.
    """
    return from_number if direction == "outbound" else to_number


def dial_twiml(number: str, *, caller: str, action: str, whisper_url: str | None = None) -> str:
    """`<Dial>` the target with the call's Twilio number; `action` hears how it ended."""
    response = VoiceResponse()
    dial = Dial(action=action, method="POST", caller_id=caller)
    if whisper_url:
        dial.number(number, url=whisper_url, method="POST")
    else:
        dial.number(number)
    response.append(dial)
    return str(response)


def hangup_twiml() -> str:
    """`<Hangup/>`: the transfer was answered and is over; so is the call."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


async def update_call(
    settings: Settings, call_sid: str, *, twiml: str | None = None, status: str | None = None
) -> None:
    """Update a live call: new TwiML (a transfer) or `status=completed` (a hang-up).

    Raises:
        TransferRefused: Twilio refused it, or could not be reached in time.
    """
    try:
        client, http = rest_client(settings)
    except ValueError as e:
        raise TransferRefused(0, str(e)) from None
    fields: dict[str, str] = {}
    if twiml is not None:
        fields["twiml"] = twiml
    if status is not None:
        fields["status"] = status
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_SECS):
            await client.calls(call_sid).update_async(**fields)  # type: ignore[arg-type]
    except TwilioRestException as e:
        logger.warning(f"Twilio refused the call update: {e.msg} ({e.code})")
        raise TransferRefused(int(e.code or 0), str(e.msg)) from None
    except (TwilioException, aiohttp.ClientError, OSError, TimeoutError) as e:
        logger.error(f"Twilio could not be reached for the call update: {type(e).__name__}")
        raise TransferRefused(0, "Twilio could not be reached") from None
    finally:
        await http.close()
