"""The command line: place one call, print its timeline, save what the caller heard.

python simulate.py --url http://127.0.0.1:8000 --say "What are your hours?"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import wave
from collections.abc import Iterator, Sequence
from typing import Any

import aiohttp
from websockets.exceptions import WebSocketException

from simulator.arguments import DEFAULT_NUMBERS, Step, parser
from simulator.audio import SAMPLE_RATE, read_wav, synthesize, write_wav
from simulator.call import SimulatedCall
from simulator.dialout import CallsApi, place_dialout, report_status
from simulator.errors import CallEnded, CallRejected, DialoutError, StreamRejected, WebhookError
from simulator.exotel import ExotelCall
from simulator.twilio import parse_twiml

# From picking up to saying "Hello?", as people do.
CALLEE_PICKUP_SECS = 0.8


def _speech_for(step: Step) -> bytes:
    return synthesize(step.value) if step.kind == "say" else read_wav(step.value)


class _Timeline:
    def __init__(self) -> None:
        self.origin = time.monotonic()

    def __call__(self, text: str, at: float | None = None) -> None:
        moment = time.monotonic() if at is None else at
        print(f"[{moment - self.origin:7.3f}s] {text}", flush=True)


async def _listen(
    call: SimulatedCall, log: _Timeline, after: float, patience: float, *, cause: str
) -> None:
    """Wait for the bot to answer what happened at ``after``, then to finish."""
    try:
        first = await call.wait_for_bot_audio(after=after, timeout=patience)
    except TimeoutError:
        log(f"no bot audio within {patience:g} s")
        return
    with contextlib.suppress(TimeoutError):
        await call.wait_for_bot_quiet(timeout=120)
    # After speech, a reply starts as reply_starts() defines it, as in the summary.
    started = (call.reply_starts()[-1] if cause == "the caller stopped" else None) or first
    log(f"bot audio, {started - after:.3f} s after {cause}", started)


def _call_for(args: argparse.Namespace) -> SimulatedCall:
    from_number, to_number = (
        args.from_number or DEFAULT_NUMBERS[args.provider][0],
        args.to_number or DEFAULT_NUMBERS[args.provider][1],
    )
    if args.provider == "exotel":
        return ExotelCall(
            args.url,
            ws_user=args.ws_user,
            ws_password=args.ws_password,
            sample_rate=args.sample_rate,
            from_number=from_number,
            to_number=to_number,
            params=dict(args.param),
        )
    return SimulatedCall(
        args.url,
        auth_token=args.auth_token,
        from_number=from_number,
        to_number=to_number,
        params=dict(args.param),
        account_sid=args.account_sid,
    )


async def _run(args: argparse.Namespace) -> str | None:
    script: Sequence[Step] = args.script or []
    speech: list[bytes] = []
    for step in script:  # before dialing, so the caller never waits on synthesis
        if step.kind == "dtmf":
            continue
        try:
            speech.append(await asyncio.to_thread(_speech_for, step))
        except (OSError, EOFError, wave.Error, ValueError) as exc:
            return f"cannot read {step.value}: {exc}"
    speech_for = iter(speech)
    log = _Timeline()
    if args.dialout:
        return await _run_dialout(args, log, script, speech_for)
    call = _call_for(args)
    async with call:
        log(
            f"dialing {call.webhook_url} as {call.call_sid}, {call.from_number} -> {call.to_number}"
        )
        await call.dial()
        await _converse(args, log, call, script, speech_for)
    return _report(args, call)


async def _run_dialout(
    args: argparse.Namespace, log: _Timeline, script: Sequence[Step], speech: Iterator[bytes]
) -> str | None:
    if not args.twilio_api:
        return "--dialout needs --twilio-api (or $TWILIO_API_BASE_URL), e.g. http://127.0.0.1:8765"
    if not args.to_number:
        return "--dialout needs --to, the number the server should call"
    body: dict[str, Any] = {"to": args.to_number, "parameters": dict(args.param)}
    if args.from_number:
        body["from"] = args.from_number
    try:
        api = CallsApi(args.twilio_api, auth_token=args.auth_token)
    except ValueError as exc:
        return f"--twilio-api: {exc}"
    async with api:
        log(f"POST {args.url}/dialout to {args.to_number}; Twilio's Calls API at {api.base_url}")
        placed = await place_dialout(args.url, args.api_key, body, api)
    log(f"the server created {placed.call_sid}: {placed.form['From']} -> {placed.form['To']}")
    for sequence, event in enumerate(("initiated", "ringing", "answered")):
        status = await report_status(args.url, args.auth_token, placed, event, sequence)
        if status is not None and status >= 300:
            log(f"status callback {event!r} answered HTTP {status}")
    stream_url, parameters = parse_twiml(placed.form["Twiml"])
    call = SimulatedCall(
        args.url,
        auth_token=args.auth_token,
        from_number=placed.form["From"],
        to_number=placed.form["To"],
        account_sid=placed.account_sid,
        call_sid=placed.call_sid,
    )
    async with call:
        log("the callee answers")
        await call.connect_stream(stream_url, parameters)
        await _converse(args, log, call, script, speech, callee=True)
    await report_status(args.url, args.auth_token, placed, "completed", 3)
    return _report(args, call)


async def _converse(
    args: argparse.Namespace,
    log: _Timeline,
    call: SimulatedCall,
    script: Sequence[Step],
    speech_for: Iterator[bytes],
    *,
    callee: bool = False,
) -> None:
    """Play the script on a connected call, up to the hang-up."""
    if call.closed_by is None:
        log(f"stream {call.stream_url} started, parameters {call.parameters}", call.start_sent_at)
    try:
        if callee and script:  # a callee with something to say speaks first, once on the line
            await call.silence(CALLEE_PICKUP_SECS)
        else:
            await _listen(call, log, call.start_sent_at, args.reply_timeout, cause="the start")
        for step in script:
            if step.kind == "dtmf":
                await call.press(step.value)
                pressed = time.monotonic()
                log(f"caller pressed {step.value}", pressed)
                await _listen(call, log, pressed, args.reply_timeout, cause="the keypress")
                continue
            ended = await call.say(next(speech_for))
            said = repr(step.value) if step.kind == "say" else f"the audio of {step.value}"
            log(f"caller said {said}", ended)
            await _listen(call, log, ended, args.reply_timeout, cause="the caller stopped")
        await asyncio.sleep(args.hangup_after)
    except CallEnded:
        pass
    if call.closed_by == "server":
        log(f"server hung up (close {call.close_code} {call.close_reason})".rstrip())
    else:
        log("caller hangs up")


def _report(args: argparse.Namespace, call: SimulatedCall) -> str | None:
    """Save and summarise what the caller heard; returns a failure, or None."""
    write_wav(args.out, call.heard)
    latencies = ", ".join(f"{latency:.3f}" for latency in call.reply_latencies()) or "none"
    print(
        f"heard {len(call.heard) / (2 * SAMPLE_RATE):.2f} s of bot audio -> {args.out}; "
        f"reply latencies (s): {latencies}; "
        f"clears: {call.clears}; marks echoed: {len(call.marks_echoed)}"
    )
    if call.protocol_errors:
        print(f"protocol errors: {'; '.join(call.protocol_errors[:5])}", file=sys.stderr)
    if call.closed_by == "server" and call.close_code == 1008:
        reason = call.close_reason or "signature rejected?"
        return f"server closed the stream with 1008 (policy violation): {reason}"
    if call.closed_by == "server" and call.close_code not in (1000, 1001):
        return (
            f"server closed the stream abnormally: {call.close_code} {call.close_reason}".rstrip()
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = parser().parse_args(argv)
    try:
        failure = asyncio.run(_run(args))
    except CallRejected as exc:
        failure = f"call rejected: {exc.reason}"
    except WebhookError as exc:
        hint = " (signature rejected?)" if exc.status in (401, 403) else ""
        failure = f"voice webhook answered HTTP {exc.status}{hint}"
    except DialoutError as exc:
        failure = f"dial-out failed: {exc}"
    except StreamRejected as exc:
        hint = " (signature rejected?)" if exc.status in (401, 403) else ""
        failure = f"media stream upgrade refused with HTTP {exc.status}{hint}"
    except (aiohttp.ClientError, OSError) as exc:
        failure = f"cannot reach {args.url}: {exc or type(exc).__name__}"
    except WebSocketException as exc:
        failure = f"media stream failed: {exc}"
    except KeyboardInterrupt:
        failure = "interrupted"
    if failure:
        print(f"simulate: {failure}", file=sys.stderr)
        return 1
    return 0
