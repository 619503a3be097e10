"""0005: connecting accounts, and switching connections off (issue 13).

- interlink_oauth_flows: one "connect your account" attempt each: hashes of its ticket,
  state and browser session, the PKCE verifier as vault ciphertext, its redirect URI,
  status (ticket | started | connected | failed), expiry and outcome
- interlink_connection_switches: the connections and accounts switched off, with who did
  it, when and why

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "interlink_oauth_flows",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("connection", sa.String(200), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("ticket_hash", sa.String(64), unique=True),
        sa.Column("state_hash", sa.String(64), unique=True),
        sa.Column("session_hash", sa.String(64)),
        sa.Column("verifier", sa.Text),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("connected_account", sa.String(200)),
        sa.Column("error", sa.Text),
        sa.Column("created_by", sa.String(200)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
    )
    op.create_index(
        "ix_interlink_oauth_flows_connection",
        "interlink_oauth_flows",
        ["connection", "created_at"],
    )
    op.create_table(
        "interlink_connection_switches",
        sa.Column("connection", sa.String(200), primary_key=True),
        sa.Column("account", sa.String(200), primary_key=True),
        sa.Column("reason", sa.Text),
        sa.Column("disabled_by", sa.String(200)),
        sa.Column("disabled_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("interlink_connection_switches")
    op.drop_index("ix_interlink_oauth_flows_connection", table_name="interlink_oauth_flows")
    op.drop_table("interlink_oauth_flows")
