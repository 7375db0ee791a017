"""Text columns: a SIP address, a long call id or status is stored whole, never refused.

PostgreSQL refused a value longer than its VARCHAR(n) ("value too long"), and the
write was lost. SQLite keeps no lengths, so there is nothing to change there.

Revision ID: 0005_text_columns
Revises: 0004_recordings
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_text_columns"
down_revision: str | Sequence[str] | None = "0004_recordings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each shortened column, and the length it had.
COLUMNS = {
    "calls": {
        "sid": 64,
        "provider": 16,
        "direction": 16,
        "from_number": 64,
        "to_number": 64,
        "end_reason": 32,
        "status": 16,
        "answered_by": 32,
        "recording_location": 512,
    },
    "turns": {"call_sid": 64, "role": 16},
    "events": {"call_sid": 64},
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, columns in COLUMNS.items():
        for column, length in columns.items():
            op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(length))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, columns in COLUMNS.items():
        for column, length in columns.items():
            op.alter_column(table, column, type_=sa.String(length), existing_type=sa.Text())
