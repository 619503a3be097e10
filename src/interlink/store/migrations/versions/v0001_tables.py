"""0001: interlink's tables as the first release made them (before versioned migrations).

A database made by that release has these tables and no version table; `store._migrate`
recognises it by `interlink_runs` and records it at this revision before upgrading.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "interlink_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(200), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.Column("full_refresh", sa.Boolean, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("resumed", sa.Boolean, nullable=False),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("read", sa.Integer, nullable=False),
        sa.Column("created", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("unchanged", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("owner", sa.String(200)),
    )
    op.create_table(
        "interlink_state",
        sa.Column("pipeline", sa.String(200), primary_key=True),
        sa.Column("cursor", sa.JSON),
        sa.Column("read_since", sa.JSON),
        sa.Column("checkpoint", sa.JSON),
        sa.Column("pending_cursor", sa.JSON),
        sa.Column("run_id", sa.Integer),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "interlink_locks",
        sa.Column("pipeline", sa.String(200), primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "interlink_record_errors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False, index=True),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("record_key", sa.Text),
        sa.Column("step", sa.String(20), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "interlink_schema_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("column_name", sa.String(200), nullable=False),
        sa.Column("column_type", sa.String(50), nullable=False),
        sa.Column("run_id", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "interlink_bindings",
        sa.Column("pipeline", sa.String(200), primary_key=True),
        sa.Column("source_key", sa.String(500), primary_key=True),
        sa.Column("target_key", sa.String(500), nullable=False),
        sa.Column("source_version", sa.Text),
        sa.Column("target_version", sa.Text),
        sa.Column("synced_at", sa.Float, nullable=False),
        sa.Index("ix_interlink_bindings_target", "pipeline", "target_key"),
    )
    op.create_table(
        "interlink_conflicts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(200), nullable=False, index=True),
        sa.Column("source_key", sa.String(500), nullable=False),
        sa.Column("target_key", sa.String(500), nullable=False),
        sa.Column("source_version", sa.Text),
        sa.Column("source_record", sa.JSON, nullable=False),
        sa.Column("target_record", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("resolution", sa.String(20)),
        sa.Column("run_id", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("resolved_at", sa.Float),
    )
    jobs = op.create_table(
        "interlink_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("lock", sa.String(200)),
        sa.Column("pipeline", sa.String(200)),
        sa.Column("run_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("lease_until", sa.Float),
        sa.Column("worker", sa.String(200)),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("progress", sa.JSON),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("backend_id", sa.BigInteger),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Index("ix_interlink_jobs_status", "status", "id"),
        sa.Index(
            "ix_interlink_jobs_pipeline",
            "pipeline",
            "id",
            sqlite_where=sa.text("pipeline IS NOT NULL"),
            postgresql_where=sa.text("pipeline IS NOT NULL"),
        ),
        sa.Index(
            "ux_interlink_jobs_idempotency_key",
            "idempotency_key",
            unique=True,
            sqlite_where=sa.text("idempotency_key IS NOT NULL"),
            postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        ),
    )
    # The SQLite queue's claim and reclaim scans; PostgreSQL's queue is Procrastinate's.
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(
            "ix_interlink_jobs_ready",
            "interlink_jobs",
            [jobs.c.priority.desc(), jobs.c.id],
            sqlite_where=sa.text("status = 'queued'"),
        )
        op.create_index(
            "ix_interlink_jobs_running",
            "interlink_jobs",
            ["lease_until"],
            sqlite_where=sa.text("status = 'running'"),
        )
    op.create_table(
        "interlink_api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_table(
        "interlink_rate_limits",
        sa.Column("bucket", sa.String(300), primary_key=True),
        sa.Column("tat", sa.Float, nullable=False),
    )
    op.create_table(
        "interlink_schedules",
        sa.Column("pipeline", sa.String(200), primary_key=True),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("last_tick", sa.Float, nullable=False),
        sa.Column("last_job_id", sa.Integer),
    )


def downgrade() -> None:
    for table in (
        "interlink_schedules",
        "interlink_rate_limits",
        "interlink_api_keys",
        "interlink_jobs",
        "interlink_conflicts",
        "interlink_bindings",
        "interlink_schema_changes",
        "interlink_record_errors",
        "interlink_locks",
        "interlink_state",
        "interlink_runs",
    ):
        op.drop_table(table)
