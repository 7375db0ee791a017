"""Where call records live: database URLs, the async engine, and schema migrations.

SQLite (through aiosqlite) needs no server and is the default; PostgreSQL
(through asyncpg) is for several replicas sharing one database. The schema is
Alembic's `migrations/`, brought up to date at every start-up.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE = "sqlite+aiosqlite"
POSTGRESQL = "postgresql+asyncpg"
_ASYNC_DRIVERS = {
    "sqlite": SQLITE,
    SQLITE: SQLITE,
    "postgres": POSTGRESQL,
    "postgresql": POSTGRESQL,
    POSTGRESQL: POSTGRESQL,
}
ROOT = Path(__file__).resolve().parent.parent
# Any constant will do: replicas starting together take turns to migrate.
MIGRATION_LOCK = 0x5377_6264


def async_database_url(url: str) -> str:
    """The async-driver form of a SQLite or PostgreSQL URL.

    `sqlite:///./data/x.db` becomes `sqlite+aiosqlite:///./data/x.db`, and
    `postgres://…` or `postgresql://…` become `postgresql+asyncpg://…`.

    Raises:
        ValueError: Not a SQLite or PostgreSQL URL (the message never holds the URL,
            which may carry a password).
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            "is not a database URL like sqlite:///./data/switchboard.db "
            "or postgresql://user:password@host:5432/switchboard"
        ) from None
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(f"{parsed.drivername!r} is not supported: use sqlite or postgresql")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def printable_url(url: str) -> str:
    """The URL with its password masked, for log lines."""
    return make_url(url).render_as_string(hide_password=True)


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; a SQLite file gets its folder and WAL mode.

    In WAL mode readers never wait for the writer, and a committed write
    survives the process being killed.
    """
    parsed = make_url(async_database_url(url))
    # hide_parameters: an error's message would otherwise carry numbers and what was said.
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # `timeout`: how long a writer waits for another one (another worker process,
    # another replica on the same file) before "database is locked".
    engine = create_async_engine(parsed, connect_args={"timeout": 30}, hide_parameters=True)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config() -> Config:
    """Alembic's configuration: `alembic.ini`, with the scripts found wherever we run from."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return config


async def lock_for_migration(connection: AsyncConnection) -> None:
    """On PostgreSQL, wait for any other replica's migration; held to the transaction's end."""
    if connection.dialect.name == "postgresql":
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
        )


@asynccontextmanager
async def sqlite_migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """On a SQLite file, wait for any other process's migration (a lock file beside it).

    SQLite's DDL is not transactional under Alembic: two workers starting at once
    on a new file would both create the tables.
    """
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock = await asyncio.to_thread(_take_file_lock, f"{database}.migration-lock")
    try:
        yield
    finally:
        os.close(lock)  # closing the file lets go of the lock


def _take_file_lock(path: str) -> int:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return descriptor


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema up to the newest migration: `alembic upgrade head`, in-process."""
    async with sqlite_migration_lock(engine), engine.begin() as connection:
        await lock_for_migration(connection)
        await connection.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
