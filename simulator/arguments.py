"""The simulator's command-line options: what to say, press and wait for, and where."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass

from simulator.audio import SAMPLE_RATE


@dataclass(frozen=True)
class Step:
    kind: str  # "say", "wav" or "dtmf"
    value: str


def _step(kind: str) -> Callable[[str], Step]:
    return lambda value: Step(kind, value)


def _parameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected k=v, got {text!r}")
    return key, value


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simulate.py",
        description="Call a Switchboard server the way Twilio would, without a phone.",
    )
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--provider",
        choices=("twilio", "exotel"),
        default="twilio",
        help="whose side to play: Twilio (webhook, then Media Stream) or Exotel (Voicebot applet)",
    )
    parser.add_argument(
        "--sample-rate",
        type=int,
        choices=(8000, 16000),
        default=SAMPLE_RATE,
        help="Exotel only: the applet's ?sample-rate=",
    )
    parser.add_argument(
        "--ws-user",
        default=os.environ.get("EXOTEL_WS_USERNAME"),
        help="Exotel only: Basic auth user of the applet URL (default: $EXOTEL_WS_USERNAME)",
    )
    parser.add_argument(
        "--ws-password",
        default=os.environ.get("EXOTEL_WS_PASSWORD"),
        help="Exotel only: its password (default: $EXOTEL_WS_PASSWORD)",
    )
    # The caller's script: each step, in the order given on the command line.
    for kind, metavar, help_text in (
        ("say", "TEXT", "speak TEXT (Piper voice); repeatable, runs in order with --wav/--dtmf"),
        ("wav", "FILE", "speak the audio of a WAV file"),
        ("dtmf", "DIGITS", "press keypad DIGITS"),
    ):
        parser.add_argument(
            f"--{kind}",
            dest="script",
            action="append",
            type=_step(kind),
            metavar=metavar,
            help=help_text,
        )
    parser.add_argument(
        "--param",
        action="append",
        type=_parameter,
        default=[],
        metavar="K=V",
        help="extra voice webhook form field; with --dialout a parameter of the call; "
        "with Exotel a custom parameter",
    )
    parser.add_argument(
        "--auth-token",
        default=os.environ.get("TWILIO_AUTH_TOKEN"),
        help="sign requests with this token (default: $TWILIO_AUTH_TOKEN)",
    )
    parser.add_argument(
        "--account-sid",
        default=os.environ.get("TWILIO_ACCOUNT_SID"),
        help="AccountSid to call as (default: $TWILIO_ACCOUNT_SID, else random)",
    )
    parser.add_argument("--from", dest="from_number", help="the caller's number")
    parser.add_argument("--to", dest="to_number", help="the number dialled")
    parser.add_argument(
        "--dialout",
        action="store_true",
        help="have the server call --to (POST /dialout) and play the callee",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("DIALOUT_API_KEY"),
        help="bearer key for /dialout (default: $DIALOUT_API_KEY)",
    )
    parser.add_argument(
        "--twilio-api",
        default=os.environ.get("TWILIO_API_BASE_URL"),
        metavar="URL",
        help="with --dialout, serve Twilio's Calls API here, e.g. http://127.0.0.1:8765; "
        "the server's TWILIO_API_BASE_URL must be the same (default: $TWILIO_API_BASE_URL)",
    )
    parser.add_argument("--out", default="reply.wav", help="WAV of what the caller heard")
    parser.add_argument(
        "--hangup-after",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="stay on the line this long after the bot's last reply",
    )
    parser.add_argument(
        "--reply-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the bot to start each reply",
    )
    return parser


# The caller and the number dialled, when --from/--to are not given.
DEFAULT_NUMBERS = {
    "twilio": ("+15550001111", "+15550002222"),
    "exotel": ("+919876543210", "+918047491899"),
}
