"""0007: the records a run owes its destination.

- interlink_outstanding: per pipeline (its state key) and record key, a record that failed
  in a run and that no run has written since: the run it last failed in, the step and
  error, when it first and last failed, and in how many runs

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "interlink_outstanding",
        sa.Column("pipeline", sa.String(200), primary_key=True),
        sa.Column("record_key", sa.Text, primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("step", sa.String(20), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("first_failed_at", sa.Float, nullable=False),
        sa.Column("failed_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("interlink_outstanding")
