"""Run Switchboard for the benchmark, through its own production entry point.

    python -m bench.switchboard --port 8100 --profile bench --clip clip.wav --data /tmp/x
    python -m bench.switchboard --port 8100 --profile offline --data /tmp/x
    python -m bench.switchboard --port 8100 --clip clip.wav --data /tmp/x --workers 2
    python -m bench.switchboard --port 8100 --profile bench --clip clip.wav --data /tmp/x --events
    python -m bench.switchboard --port 8100 --profile bench --clip clip.wav --data /tmp/x --record

`bench` swaps in the instant bench services (`BenchVoiceStack`); `offline`
loads the real offline stack (Whisper + echo agent + Piper). Everything else
is what `make run` serves (`server.create_app` under `ops.drain.run`): metrics,
call records and transcripts (in a SQLite file under `--data`), admission
control, with `MAX_CALLS` raised out of the way so the benchmark finds the
limit of the process rather than the configured one. `--workers N` serves
with N worker processes under the supervisor, as `WORKERS=N` does. `--events` turns call
events on, delivered to a `bench.receiver` on another core: the outbox, its
sender and the signed deliveries then count in the server's CPU. `--record` records every
call (`RECORDING=local`, into `--data`), to measure what recording costs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ops import drain, workers
from ops.logs import configure_logging
from ops.machine import Machine
from server import create_app
from settings import Settings

PROFILES = ("bench", "offline")
UNCAPPED = 10_000


# Any 32 bytes: the bench receiver checks no signatures, but they are made all the same.
BENCH_SECRET = "whsec_YmVuY2gtZXZlbnRzLXNpZ25pbmcta2V5LTAxMjM0NTY3"


def bench_settings(
    port: int,
    data: Path,
    log_level: str = "INFO",
    events_url: str | None = None,
    workers: int = 1,
    *,
    record: bool = False,
) -> Settings:
    """Settings for a loopback benchmark: no `.env`, no Twilio credentials, no call cap."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        host="127.0.0.1",
        port=port,
        log_level=log_level,
        twilio_account_sid=None,
        twilio_auth_token=None,
        stt="whisper",
        llm="echo",
        tts="piper",
        max_calls=UNCAPPED,
        max_handshaking=UNCAPPED,  # the load generator opens many streams at once
        workers=workers,
        database_url=f"sqlite+aiosqlite:///{data / 'bench.db'}",
        events_url=events_url,
        webhook_secret=BENCH_SECRET if events_url else None,
        recording="local" if record else "off",
        recordings_dir=data / "recordings",
        recording_notice="",  # the same greeting as without recording
    )


def start_receiver(port: int) -> subprocess.Popen[bytes]:
    """`bench.receiver` on `port`, off this process's core."""
    core = min(os.sched_getaffinity(0))
    command = [sys.executable, "-m", "bench.receiver", "--port", str(port)]
    return subprocess.Popen([*command, "--avoid-core", str(core)])


def main(argv: list[str] | None = None) -> None:
    """Serve Switchboard with the chosen voice profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--profile", choices=PROFILES, default="bench")
    parser.add_argument("--clip", help="8 kHz mono WAV the bench TTS plays (profile bench)")
    parser.add_argument("--data", type=Path, required=True, help="where the call records go")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (WORKERS)")
    parser.add_argument("--events", action="store_true", help="deliver call events")
    parser.add_argument("--record", action="store_true", help="record every call (local WAV)")
    args = parser.parse_args(argv)
    receiver = None
    events_url = None
    if args.events:
        from bench.processes import free_port

        receiver_port = free_port()
        receiver = start_receiver(receiver_port)
        events_url = f"http://127.0.0.1:{receiver_port}/events"
    settings = bench_settings(
        args.port, args.data, args.log_level, events_url, args.workers, record=args.record
    )
    configure_logging(settings)
    if args.workers > 1 and Machine.from_environment() is None:
        arguments = sys.argv[1:] if argv is None else argv
        command = [sys.executable, "-m", "bench.switchboard", *arguments]
        workers.supervise(command, args.workers, settings.host, settings.port)
    voice = None
    if args.profile == "bench":
        from bench.services import BenchVoiceStack, read_clip

        if not args.clip:
            parser.error("--clip is needed with --profile bench")
        voice = BenchVoiceStack.create(settings, read_clip(args.clip))
    try:
        drain.run(create_app(settings, voice), settings)
    finally:
        if receiver is not None:
            receiver.terminate()


if __name__ == "__main__":
    main()
