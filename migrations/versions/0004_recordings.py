"""A call's recording: where it is kept, how long it is, and who made it.

Revision ID: 0004_recordings
Revises: 0003_events_outbox
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_recordings"
down_revision: str | Sequence[str] | None = "0003_events_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("recording_source", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("recording_location", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("recording_duration", sa.Float(), nullable=True))
        batch.add_column(sa.Column("recording_sid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("recording_sid")
        batch.drop_column("recording_duration")
        batch.drop_column("recording_location")
        batch.drop_column("recording_source")
