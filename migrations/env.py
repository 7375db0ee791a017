"""Alembic's entry point for call-record migrations.

The server runs them in-process at start-up (`records.database.migrate`), and
hands its own connection over in `config.attributes["connection"]`. From the
command line (`alembic upgrade head`), the URL is the server's `DATABASE_URL`.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from records.database import create_engine, lock_for_migration
from records.models import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    from settings import Settings

    return Settings().database_url.get_secret_value()


def run_migrations(connection: Connection) -> None:
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_command_line() -> None:
    engine = create_engine(database_url())
    try:
        async with engine.begin() as connection:
            await lock_for_migration(connection)
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


shared_connection = config.attributes.get("connection")
if shared_connection is not None:
    run_migrations(shared_connection)
else:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name)
    if context.is_offline_mode():
        run_offline()
    else:
        asyncio.run(run_from_command_line())
