"""Shared fixtures: the databases call records are tested against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throw-away PostgreSQL server for the whole test session."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind the server supports, one per test."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()
