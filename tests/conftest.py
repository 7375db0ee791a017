"""Shared fixtures: the voice stack, real servers on loopback, Whisper to listen, databases,
and fakes of the telephony providers' REST APIs."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr
from loguru import logger

from records.store import CallStore
from server import create_app
from settings import Settings
from tests.fake_exotel import FakeExotel
from tests.fake_twilio import FakeTwilio
from tests.postgres import PostgresServer
from tests.s3_server import S3Account, S3Server
from tests.server_thread import OWN_URL, ServerThread, free_port
from voice import VoiceStack
from voice.prompts import GreetingCache

TEST_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TEST_AUTH_TOKEN = "test-auth-token-0123456789abcdef"

MakeServer = Callable[..., ServerThread]
Transcribe = Callable[[bytes], str]
TEST_MAX_CALLS = 20

# Pipecat logs every frame hop at DEBUG; a failing test's output should stay readable.
logger.remove()
logger.add(sys.stderr, level="INFO")


def offline_settings(**overrides: Any) -> Settings:
    """Settings for a test server: offline stack, no `.env`, overrides as keyword arguments."""
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give tests that judge speech with Whisper two more tries.

    Whisper tiny on 8 kHz audio sometimes mishears a word, more often on a busy
    machine. A test that listens (the `transcribe` fixture, or marked `speech`
    because it checks what the server's own Whisper heard) is retried; a wrong
    behaviour still fails every try. Only a test's own mark counts: a module's
    or a class's would retry tests that do not listen, and hide their races.
    """
    for item in items:
        listens = "transcribe" in getattr(item, "fixturenames", ())
        marked = any(mark.name == "speech" for mark in getattr(item, "own_markers", ()))
        if item.get_closest_marker("speech") and not marked:
            raise pytest.UsageError(f"{item.nodeid}: mark the test `speech`, not its module")
        if listens or marked:
            item.add_marker(pytest.mark.flaky(reruns=2))


@pytest.fixture(scope="session")
def voice_stack() -> VoiceStack:
    """Whisper, Piper and Silero, loaded once for the whole test session."""
    return asyncio.run(VoiceStack.load(offline_settings()))


@pytest.fixture
def make_server(voice_stack: VoiceStack, tmp_path: Path) -> Iterator[MakeServer]:
    """Start real servers on 127.0.0.1 with the given settings; all stop after the test.

    Their call records go to a SQLite file of the test's own unless `database_url` is given;
    `public_url=OWN_URL` is the server's own address.
    """
    servers: list[ServerThread] = []

    def make(**overrides: Any) -> ServerThread:
        overrides.setdefault("database_url", f"sqlite:///{tmp_path / 'switchboard.db'}")
        # Tests about capacity set their own; the rest open more calls than the offline default.
        overrides.setdefault("max_calls", TEST_MAX_CALLS)
        port = free_port()
        if overrides.get("public_url") == OWN_URL:
            overrides["public_url"] = f"http://127.0.0.1:{port}"
        # A greeting cache of its own, as a process has: Piper's speech varies from one
        # synthesis to the next, and a rerun must not replay the same take.
        voice = dataclasses.replace(voice_stack, greetings=GreetingCache())
        app = create_app(offline_settings(**overrides), voice=voice)
        server = ServerThread(app, port=port)
        servers.append(server.start())
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def transcribe(voice_stack: VoiceStack) -> Transcribe:
    """Transcribe 8 kHz PCM16 (what a caller heard) with the server's own Whisper model."""

    def run(pcm8k: bytes) -> str:
        samples = np.frombuffer(pcm8k, dtype="<i2").astype(np.float32) / 32768.0
        audio16k = soxr.resample(samples, 8000, 16000).astype(np.float32)
        segments, _ = voice_stack.whisper.transcribe(audio16k, language="en")
        return " ".join(segment.text.strip() for segment in segments)

    return run


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throw-away PostgreSQL server for the whole test session."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind call records support, one per test."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[CallStore]:
    """A migrated call store on each kind of database."""
    store = CallStore(database_url)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Account]:
    """An S3-compatible store (moto's server) and a bucket, for the whole test session."""
    with S3Server(tmp_path_factory.mktemp("s3")) as server:
        yield server.account()


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """A fake of Twilio's REST API for the test account, serving for one test."""
    with FakeTwilio(account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def exotel() -> Iterator[FakeExotel]:
    """A fake of Exotel's Calls/connect API, serving for one test."""
    with FakeExotel() as fake:
        yield fake
