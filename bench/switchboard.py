"""Run Switchboard for the benchmark, through its own production entry point.

    python -m bench.switchboard --port 8100 --profile bench --clip clip.wav --data /tmp/x
    python -m bench.switchboard --port 8100 --profile offline --data /tmp/x
    python -m bench.switchboard --port 8100 --profile bench --clip clip.wav --data /tmp/x --record

`bench` swaps in the instant bench services (`BenchVoiceStack`); `offline`
loads the real offline stack (Whisper + echo agent + Piper). Everything else
is what `make run` serves (`server.create_app` under `ops.drain.run`): metrics,
call records and transcripts (in a SQLite file under `--data`), admission
control, with `MAX_CALLS` raised out of the way so the benchmark finds the
limit of the process rather than the configured one. `--record` records every
call (`RECORDING=local`, into `--data`), to measure what recording costs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ops import drain
from ops.logs import configure_logging
from server import create_app
from settings import Settings

PROFILES = ("bench", "offline")
UNCAPPED = 10_000


def bench_settings(
    port: int, data: Path, log_level: str = "INFO", *, record: bool = False
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
        database_url=f"sqlite+aiosqlite:///{data / 'bench.db'}",
        recording="local" if record else "off",
        recordings_dir=data / "recordings",
        recording_notice="",  # the same greeting as without recording
    )


def main(argv: list[str] | None = None) -> None:
    """Serve Switchboard with the chosen voice profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--profile", choices=PROFILES, default="bench")
    parser.add_argument("--clip", help="8 kHz mono WAV the bench TTS plays (profile bench)")
    parser.add_argument("--data", type=Path, required=True, help="where the call records go")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--record", action="store_true", help="record every call (local WAV)")
    args = parser.parse_args(argv)
    settings = bench_settings(args.port, args.data, args.log_level, record=args.record)
    configure_logging(settings)
    voice = None
    if args.profile == "bench":
        from bench.services import BenchVoiceStack, read_clip

        if not args.clip:
            parser.error("--clip is needed with --profile bench")
        voice = BenchVoiceStack.create(settings, read_clip(args.clip))
    drain.run(create_app(settings, voice), settings)


if __name__ == "__main__":
    main()
