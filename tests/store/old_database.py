"""A database as the release before versioned migrations left it: its tables (the frozen
copy in schema_0001.py, no version table) holding a bit of everything."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from interlink.store import hash_api_key
from tests.store import schema_0001 as old

SECRET = "il_abcd2345_" + "K" * 43
"""The API key stored (by its hash) in the old database."""


def build(engine: sa.Engine) -> None:
    """Create the old tables in the empty database of `engine` and fill every one of them.

    Ids are left to the database (1, 2, ... in order), so its sequences stay in step."""
    old.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(old.runs),
            [
                {
                    "pipeline": "customers",
                    "status": "succeeded",
                    "started_at": 1_700_000_000.25,
                    "finished_at": 1_700_000_060.5,
                    "full_refresh": True,
                    "dry_run": False,
                    "resumed": False,
                    "pages": 3,
                    "read": 250,
                    "created": 200,
                    "updated": 49,
                    "unchanged": 0,
                    "failed": 1,
                    "skipped": 0,
                    "errors": [{"key": "7", "step": "map", "error": "no email"}],
                    "message": None,
                    "owner": "laptop:4242",
                },
                {
                    "pipeline": "customers",
                    "status": "running",
                    "started_at": 1_700_000_100.0,
                    "finished_at": None,
                    "full_refresh": False,
                    "dry_run": False,
                    "resumed": True,
                    "pages": 1,
                    "read": 100,
                    "created": 0,
                    "updated": 100,
                    "unchanged": 0,
                    "failed": 0,
                    "skipped": 0,
                    "errors": [],
                    "message": "resumed from page 2",
                    "owner": "laptop:4343",
                },
            ],
        )
        conn.execute(
            sa.insert(old.state),
            [
                {
                    "pipeline": "customers",
                    "cursor": "2024-05-01T10:00:00Z",
                    "read_since": "2024-05-01T10:00:00Z",
                    "checkpoint": {"page": 3, "next": "/customers?page=3"},
                    "pending_cursor": "2024-05-02T08:30:00Z",
                    "run_id": 2,
                    "updated_at": 1_700_000_120.0,
                },
                {
                    "pipeline": "orders",
                    # (A bare number would not read back on SQLite: test_sqlite_json.py.)
                    "cursor": {"id": 1234},
                    "read_since": None,
                    "checkpoint": None,
                    "pending_cursor": None,
                    "run_id": 1,
                    "updated_at": 1_700_000_060.5,
                },
            ],
        )
        conn.execute(
            sa.insert(old.locks).values(
                pipeline="customers", run_id=2, owner="laptop:4343", expires_at=1_700_000_400.0
            )
        )
        conn.execute(
            sa.insert(old.record_errors).values(
                run_id=1,
                pipeline="customers",
                record_key="7",
                step="map",
                error="no email",
                created_at=1_700_000_030.0,
            )
        )
        conn.execute(
            sa.insert(old.schema_changes).values(
                table_name="customers",
                column_name="vip",
                column_type="boolean",
                run_id=1,
                created_at=1_700_000_010.0,
            )
        )
        conn.execute(
            sa.insert(old.bindings),
            [
                {
                    "pipeline": "push",
                    "source_key": str(n),
                    "target_key": f"T-{n}",
                    "source_version": f"v{n}",
                    "target_version": None,
                    "synced_at": 1_700_000_000.0 + n,
                }
                for n in range(1, 4)
            ],
        )
        conn.execute(
            sa.insert(old.conflicts).values(
                pipeline="push",
                source_key="2",
                target_key="T-2",
                source_version="v2",
                source_record={"email": "a@example.com"},
                target_record={"email": "b@example.com"},
                status="open",
                resolution=None,
                run_id=1,
                created_at=1_700_000_050.0,
                resolved_at=None,
            )
        )
        conn.execute(
            sa.insert(old.jobs),
            [
                {
                    "kind": "pipeline",
                    "args": {"pipeline": "customers", "full_refresh": False},
                    "status": "completed",
                    "priority": 0,
                    "attempts": 1,
                    "max_attempts": 5,
                    "lock": "pipeline:customers",
                    "pipeline": "customers",
                    "run_at": 1_700_000_000.0,
                    "created_at": 1_700_000_000.0,
                    "started_at": 1_700_000_000.5,
                    "finished_at": 1_700_000_060.5,
                    "lease_until": None,
                    "worker": "laptop:4242",
                    "cancel_requested": False,
                    "progress": {"pages": 3},
                    "result": {"run_id": 1},
                    "error": None,
                    "backend_id": None,
                    "idempotency_key": "nightly-2024-05-01",
                },
                {
                    "kind": "pipeline",
                    "args": {"pipeline": "orders"},
                    "status": "queued",
                    "priority": 5,
                    "attempts": 0,
                    "max_attempts": 5,
                    "lock": "pipeline:orders",
                    "pipeline": "orders",
                    "run_at": 1_700_000_200.0,
                    "created_at": 1_700_000_200.0,
                    "started_at": None,
                    "finished_at": None,
                    "lease_until": None,
                    "worker": None,
                    "cancel_requested": False,
                    "progress": None,
                    "result": None,
                    "error": None,
                    "backend_id": 9_000_000_001,
                    "idempotency_key": None,
                },
            ],
        )
        conn.execute(
            sa.insert(old.api_keys).values(
                name="ci",
                prefix=SECRET[:11],
                key_hash=hash_api_key(SECRET),
                scope="write",
                created_at=1_700_000_000.0,
                last_used_at=None,
                revoked_at=None,
            )
        )
        conn.execute(
            sa.insert(old.rate_limits).values(bucket="1 POST /api/v1/jobs", tat=1_700_000_001.0)
        )
        conn.execute(
            sa.insert(old.schedules).values(
                pipeline="orders", cron="*/5 * * * *", last_tick=1_700_000_100.0, last_job_id=2
            )
        )


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every old table, as the old columns read it, in primary-key order."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in old.metadata.sorted_tables:
            query = sa.select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in conn.execute(query)]
    return rows
