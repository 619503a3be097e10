"""0003: the webhook inbox (issue 12).

- interlink_webhook_deliveries: every verified delivery, its raw body and status, unique
  by (source, delivery_id) so a sender's retry is recognised
- interlink_webhook_rejections: refused deliveries (reason, status, sender's address,
  time; never the body)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "interlink_webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("delivery_id", sa.String(300), nullable=False),
        sa.Column("event_type", sa.String(300)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("job_id", sa.Integer),
        sa.Column("result", sa.JSON),
        sa.Column("processed_at", sa.Float),
        sa.UniqueConstraint("source", "delivery_id", name="ux_interlink_webhook_deliveries_id"),
    )
    op.create_index(
        "ix_interlink_webhook_deliveries_status",
        "interlink_webhook_deliveries",
        ["status", "id"],
    )
    op.create_table(
        "interlink_webhook_rejections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("address", sa.String(100)),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_interlink_webhook_rejections_source",
        "interlink_webhook_rejections",
        ["source", "id"],
    )


def downgrade() -> None:
    op.drop_table("interlink_webhook_rejections")
    op.drop_table("interlink_webhook_deliveries")
