"""Run Switchboard for the benchmark, through its own production entry point.

    python -m bench.serve --port 8100 --profile bench --clip bench/results/clip.wav
    python -m bench.serve --port 8100 --profile offline

`bench` swaps in the instant bench services (`BenchVoiceStack`); `offline`
loads the real offline stack (Whisper + echo agent + Piper). Everything else
is `server.serve`, exactly as `make run` serves.
"""

from __future__ import annotations

import argparse

from logs import configure_logging
from server import serve
from settings import Settings

PROFILES = ("bench", "offline")


def bench_settings(port: int, log_level: str = "INFO") -> Settings:
    """Settings for a loopback benchmark: no `.env`, no Twilio credentials."""
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
    )


def main(argv: list[str] | None = None) -> None:
    """Serve Switchboard with the chosen voice profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--profile", choices=PROFILES, default="bench")
    parser.add_argument("--clip", help="8 kHz mono WAV the bench TTS plays (profile bench)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    settings = bench_settings(args.port, args.log_level)
    configure_logging(settings)
    voice = None
    if args.profile == "bench":
        from bench.services import BenchVoiceStack, read_clip

        if not args.clip:
            parser.error("--clip is needed with --profile bench")
        voice = BenchVoiceStack.create(settings, read_clip(args.clip))
    serve(settings, voice)


if __name__ == "__main__":
    main()
