"""0002: what the data-integrity release records (issue 10).

- interlink_runs: `deleted` (a counter), `warnings` (JSON), `trial`
- interlink_state: `fingerprint`, `full_read`, `staged`
- interlink_schema_changes: `previous_type`
- interlink_runs.status: VARCHAR(20) -> VARCHAR(32) (`completed_with_errors` is 21
  characters: PostgreSQL refused to record such a run's end)

Each new NOT NULL column has a server default, so the rows already there get a value.
(Dropping columns, in `downgrade`, goes through batch mode: SQLite copies the table.)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both dialects: SQLite adds a column with a constant
    # default in place, where batch mode would copy the whole table.
    op.add_column(
        "interlink_runs",
        sa.Column("deleted", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.add_column("interlink_runs", sa.Column("warnings", sa.JSON))
    op.add_column(
        "interlink_runs",
        sa.Column("trial", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("interlink_state", sa.Column("fingerprint", sa.Text))
    op.add_column(
        "interlink_state",
        sa.Column("full_read", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "interlink_state",
        sa.Column("staged", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("interlink_schema_changes", sa.Column("previous_type", sa.String(50)))
    # SQLite ignores the length but keeps the declared type; batch mode rewrites it there.
    with op.batch_alter_table("interlink_runs") as runs:
        runs.alter_column(
            "status",
            type_=sa.String(32),
            existing_type=sa.String(20),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("interlink_runs") as runs:
        runs.alter_column(
            "status",
            type_=sa.String(20),
            existing_type=sa.String(32),
            existing_nullable=False,
        )
    with op.batch_alter_table("interlink_schema_changes") as schema_changes:
        schema_changes.drop_column("previous_type")
    with op.batch_alter_table("interlink_state") as state:
        for column in ("staged", "full_read", "fingerprint"):
            state.drop_column(column)
    with op.batch_alter_table("interlink_runs") as runs:
        for column in ("trial", "warnings", "deleted"):
            runs.drop_column(column)
