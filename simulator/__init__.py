"""Play Twilio's (or Exotel's) side of a phone call against a running Switchboard server.

The simulator dials the voice webhook the way Twilio does, opens the Media
Stream the TwiML asks for, streams the caller's audio on a real-time 20 ms
clock and plays the bot's audio back through a model of Twilio's playout
buffer, so timings and marks behave as they would on a phone line::

    async with SimulatedCall("http://127.0.0.1:8000", auth_token=token) as call:
        await call.dial()
        await call.wait_for_bot_audio()
        ended = await call.say(synthesize("Hello"))
        await call.wait_for_bot_audio(after=ended)
        await call.wait_for_bot_quiet()

The command line is ``python simulate.py --help``.
"""

from simulator.arguments import DEFAULT_NUMBERS
from simulator.audio import (
    AUDIBLE_PEAK,
    FRAME_BYTES,
    FRAME_SAMPLES,
    FRAME_SECONDS,
    SAMPLE_RATE,
    ULAW_SILENCE,
    is_audible,
    pcm_to_ulaw,
    read_wav,
    resample_pcm,
    synthesize,
    ulaw_to_pcm,
    write_wav,
)
from simulator.call import DTMF_SPACING, REPLY_GAP, SimulatedCall
from simulator.cli import CALLEE_PICKUP_SECS, main
from simulator.dialout import CALL_PROGRESS, CallsApi, PlacedCall, place_dialout, report_status
from simulator.errors import (
    CallEnded,
    CallRejected,
    DialoutError,
    SimulatorError,
    StreamRejected,
    WebhookError,
)
from simulator.exotel import (
    EXOTEL_CHUNK_ALIGN,
    EXOTEL_MAX_CHUNK,
    EXOTEL_MIN_CHUNK,
    ExotelCall,
    ExotelMediaStream,
)
from simulator.twilio import TwilioMediaStream, new_sid, parse_twiml, stream_connect_url
from simulator.wire import ServerMessage, WireFormat

__all__ = [
    "AUDIBLE_PEAK",
    "CALLEE_PICKUP_SECS",
    "CALL_PROGRESS",
    "DEFAULT_NUMBERS",
    "DTMF_SPACING",
    "EXOTEL_CHUNK_ALIGN",
    "EXOTEL_MAX_CHUNK",
    "EXOTEL_MIN_CHUNK",
    "FRAME_BYTES",
    "FRAME_SAMPLES",
    "FRAME_SECONDS",
    "REPLY_GAP",
    "SAMPLE_RATE",
    "ULAW_SILENCE",
    "CallEnded",
    "CallRejected",
    "CallsApi",
    "DialoutError",
    "ExotelCall",
    "ExotelMediaStream",
    "PlacedCall",
    "ServerMessage",
    "SimulatedCall",
    "SimulatorError",
    "StreamRejected",
    "TwilioMediaStream",
    "WebhookError",
    "WireFormat",
    "is_audible",
    "main",
    "new_sid",
    "parse_twiml",
    "pcm_to_ulaw",
    "place_dialout",
    "read_wav",
    "report_status",
    "resample_pcm",
    "stream_connect_url",
    "synthesize",
    "ulaw_to_pcm",
    "write_wav",
]
