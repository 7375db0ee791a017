"""Dial-out attempts: recorded before the provider is asked, with their Idempotency-Key.

Revision ID: 0006_dialout_attempts
Revises: 0005_text_columns
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_dialout_attempts"
down_revision: str | Sequence[str] | None = "0005_text_columns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("attempt_id", sa.String(length=40), nullable=True))
    op.add_column("calls", sa.Column("idempotency_key", sa.String(length=255), nullable=True))
    op.add_column("calls", sa.Column("request_hash", sa.String(length=64), nullable=True))
    op.add_column("calls", sa.Column("answer", sa.JSON(), nullable=True))
    op.create_index("ix_calls_attempt_id", "calls", ["attempt_id"], unique=True)
    op.create_index("ix_calls_idempotency_key", "calls", ["idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_calls_idempotency_key", table_name="calls")
    op.drop_index("ix_calls_attempt_id", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("answer")
        batch.drop_column("request_hash")
        batch.drop_column("idempotency_key")
        batch.drop_column("attempt_id")
