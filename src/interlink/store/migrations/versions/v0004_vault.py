"""0004: the vault (issue 13).

- interlink_oauth_tokens: one encrypted token set per (connection, account), with its
  expiry in clear for listings, a status (active | needs_reauth), the last error, and a
  version bumped by every save (compare-and-set)
- interlink_vault: the canary, a known value encrypted under the vault's key, read when
  the vault opens so that a wrong key is found before any token is needed

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "interlink_oauth_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("connection", sa.String(200), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Float),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("connection", "account", name="ux_interlink_oauth_tokens_account"),
    )
    op.create_table(
        "interlink_vault",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("rotated_at", sa.Float),
    )


def downgrade() -> None:
    op.drop_table("interlink_vault")
    op.drop_table("interlink_oauth_tokens")
