"""0006: the dashboard's signed-in sessions (issue 14).

- interlink_dashboard_sessions: one browser signed in with an API key each: the SHA-256 of
  its token, the key's id, when it started and when it was last seen

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "interlink_dashboard_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_interlink_dashboard_sessions_key", "interlink_dashboard_sessions", ["key_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_interlink_dashboard_sessions_key", table_name="interlink_dashboard_sessions")
    op.drop_table("interlink_dashboard_sessions")
