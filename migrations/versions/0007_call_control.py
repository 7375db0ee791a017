"""Call control: transfers (target, number, outcome, whisper), legs, replica.

Revision ID: 0007_call_control
Revises: 0006_dialout_attempts
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_call_control"
down_revision: str | Sequence[str] | None = "0006_dialout_attempts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("transfer_target", sa.Text(), nullable=True))
        batch.add_column(sa.Column("transfer_to", sa.Text(), nullable=True))
        batch.add_column(sa.Column("transfer_status", sa.Text(), nullable=True))
        batch.add_column(sa.Column("transfer_summary", sa.Text(), nullable=True))
        batch.add_column(sa.Column("transferred_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("legs", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("replica", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("replica")
        batch.drop_column("legs")
        batch.drop_column("transferred_at")
        batch.drop_column("transfer_summary")
        batch.drop_column("transfer_status")
        batch.drop_column("transfer_to")
        batch.drop_column("transfer_target")
