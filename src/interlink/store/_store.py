"""`Store`: runs, pipeline state and locks in the configured database.

The sync engine commits a batch of records and `save_progress` in one transaction
(`Store.transaction()`), so the checkpoint never runs ahead of the data: a run killed at
any point resumes from the last committed batch.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from interlink.config import DatabaseConfig
from interlink.errors import PipelineLockedError
from interlink.types import WallClock

from ._engine import create_engine
from ._schema import locks, metadata, record_errors, runs, schema_changes, state

__all__ = ["COUNTERS", "PipelineState", "Store", "owner_alive"]

COUNTERS = ("pages", "read", "created", "updated", "unchanged", "failed", "skipped")
_MAX_ERRORS_KEPT = 20
_LEASE = 300.0

_SAVE_STATE = (
    sa.update(state)
    .where(state.c.pipeline == sa.bindparam("b_pipeline"))
    .values(
        read_since=sa.bindparam("b_read_since", type_=state.c.read_since.type),
        checkpoint=sa.bindparam("b_checkpoint", type_=state.c.checkpoint.type),
        pending_cursor=sa.bindparam("b_pending_cursor", type_=state.c.pending_cursor.type),
        run_id=sa.bindparam("b_run"),
        updated_at=sa.bindparam("b_at"),
    )
)
_SAVE_COUNTS = (
    sa.update(runs)
    .where(runs.c.id == sa.bindparam("b_run"))
    .values({name: sa.bindparam(f"n_{name}") for name in COUNTERS})
)
_RENEW = (
    sa.update(locks)
    .where(locks.c.pipeline == sa.bindparam("b_pipeline"), locks.c.run_id == sa.bindparam("b_run"))
    .values(expires_at=sa.bindparam("b_expires"))
)


@dataclass(frozen=True)
class PipelineState:
    """Where a pipeline stands between runs."""

    cursor: Any = None
    """The incremental cursor of the last completed read."""
    read_since: Any = None
    checkpoint: dict[str, Any] | None = None
    """Set while a read is unfinished: resume there with `read_since`."""
    pending_cursor: Any = None

    @property
    def interrupted(self) -> bool:
        return self.checkpoint is not None


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool:
    """False only when `owner` ("host:pid" or "host:pid:anything") ran on this machine and
    that process is gone; an owner on another machine is trusted to its lease."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """interlink's bookkeeping in the configured database (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine, *, clock: WallClock = time.time) -> None:
        self.engine = engine
        self._clock = clock
        self.owner = _owner()

    @classmethod
    def open(cls, database: DatabaseConfig | str) -> Store:
        """Connect and create interlink's tables when they are missing."""
        store = cls(create_engine(database))
        store.ensure_schema()
        return store

    def ensure_schema(self) -> None:
        metadata.create_all(self.engine, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One database transaction: committed on exit, rolled back on an exception."""
        with self.engine.begin() as connection:
            yield connection

    # -- runs and locks ---------------------------------------------------------------------

    def begin_run(
        self,
        pipeline: str,
        *,
        full_refresh: bool = False,
        dry_run: bool = False,
        lease: float = 300.0,
    ) -> int:
        """Record a new run and take the pipeline's lock; PipelineLockedError if held.

        A lock whose owner process is gone (killed on this machine) or whose lease ran out
        is taken over, and the run that held it is marked `crashed`.
        """
        now = self._clock()
        with self.transaction() as conn:
            held = conn.execute(sa.select(locks).where(locks.c.pipeline == pipeline)).first()
            if held is not None:
                if held.expires_at > now and owner_alive(held.owner):
                    raise PipelineLockedError(
                        f"already running (run {held.run_id}, {held.owner}); "
                        "runs of one pipeline never overlap",
                        pipeline=pipeline,
                    )
                conn.execute(sa.delete(locks).where(locks.c.pipeline == pipeline))
                conn.execute(
                    sa.update(runs)
                    .where(runs.c.id == held.run_id, runs.c.status == "running")
                    .values(
                        status="crashed",
                        finished_at=now,
                        message="the process running it stopped without finishing",
                    )
                )
            inserted = conn.execute(
                sa.insert(runs).values(
                    pipeline=pipeline,
                    status="running",
                    started_at=now,
                    full_refresh=full_refresh,
                    dry_run=dry_run,
                    errors=[],
                    owner=self.owner,
                    **dict.fromkeys(COUNTERS, 0),
                )
            ).inserted_primary_key
            assert inserted is not None
            run_id = inserted[0]
            try:
                conn.execute(
                    sa.insert(locks).values(
                        pipeline=pipeline,
                        run_id=run_id,
                        owner=self.owner,
                        expires_at=now + lease,
                    )
                )
            except sa.exc.IntegrityError:
                raise PipelineLockedError(
                    "another run took the lock at the same moment", pipeline=pipeline
                ) from None
        return int(run_id)

    def renew(self, conn: sa.Connection, pipeline: str, run_id: int, lease: float = _LEASE) -> None:
        conn.execute(
            _RENEW, {"b_pipeline": pipeline, "b_run": run_id, "b_expires": self._clock() + lease}
        )

    def finish_run(
        self,
        pipeline: str,
        run_id: int,
        *,
        status: str,
        counts: dict[str, int],
        errors: list[dict[str, Any]],
        message: str | None = None,
        resumed: bool = False,
    ) -> None:
        """Close the run with its final counts and release the lock."""
        with self.transaction() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status=status,
                    finished_at=self._clock(),
                    errors=errors[:_MAX_ERRORS_KEPT],
                    message=message,
                    resumed=resumed,
                    **{k: counts.get(k, 0) for k in COUNTERS},
                )
            )
            conn.execute(
                sa.delete(locks).where(locks.c.pipeline == pipeline, locks.c.run_id == run_id)
            )

    def runs(self, pipeline: str | None = None, *, limit: int = 20) -> list[dict[str, Any]]:
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        if pipeline is not None:
            query = query.where(runs.c.pipeline == pipeline)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def run(self, run_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
        return dict(row._mapping) if row is not None else None

    # -- pipeline state ---------------------------------------------------------------------

    def load_state(self, pipeline: str) -> PipelineState:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(state).where(state.c.pipeline == pipeline)).first()
        if row is None:
            return PipelineState()
        return PipelineState(row.cursor, row.read_since, row.checkpoint, row.pending_cursor)

    def _upsert_state(self, conn: sa.Connection, pipeline: str, **values: Any) -> None:
        values["updated_at"] = self._clock()
        changed = conn.execute(
            sa.update(state).where(state.c.pipeline == pipeline).values(**values)
        ).rowcount
        if not changed:
            conn.execute(sa.insert(state).values(pipeline=pipeline, **values))

    def save_progress(
        self,
        conn: sa.Connection,
        pipeline: str,
        run_id: int,
        *,
        read_since: Any,
        checkpoint: dict[str, Any] | None,
        pending_cursor: Any,
        counts: dict[str, int],
    ) -> None:
        """In the caller's transaction: where the read stands after the batch just written.

        It runs once per page, so its three statements are built once (module level) and
        only bound here: building them on every call cost more than running them.
        """
        now = self._clock()
        saved = conn.execute(
            _SAVE_STATE,
            {
                "b_pipeline": pipeline,
                "b_read_since": read_since,
                "b_checkpoint": checkpoint,
                "b_pending_cursor": pending_cursor,
                "b_run": run_id,
                "b_at": now,
            },
        ).rowcount
        if not saved:
            self._upsert_state(
                conn,
                pipeline,
                read_since=read_since,
                checkpoint=checkpoint,
                pending_cursor=pending_cursor,
                run_id=run_id,
            )
        conn.execute(
            _SAVE_COUNTS, {"b_run": run_id, **{f"n_{k}": counts.get(k, 0) for k in COUNTERS}}
        )
        conn.execute(_RENEW, {"b_pipeline": pipeline, "b_run": run_id, "b_expires": now + _LEASE})

    def complete_read(self, conn: sa.Connection, pipeline: str, run_id: int, cursor: Any) -> None:
        """In the caller's transaction: the read finished; `cursor` is where the next begins."""
        self._upsert_state(
            conn,
            pipeline,
            cursor=cursor,
            read_since=None,
            checkpoint=None,
            pending_cursor=None,
            run_id=run_id,
        )

    def reset_state(self, conn: sa.Connection, pipeline: str) -> None:
        self._upsert_state(
            conn, pipeline, cursor=None, read_since=None, checkpoint=None, pending_cursor=None
        )

    def record_error(
        self,
        conn: sa.Connection,
        run_id: int,
        pipeline: str,
        *,
        key: str | None,
        step: str,
        error: str,
    ) -> None:
        conn.execute(
            sa.insert(record_errors).values(
                run_id=run_id,
                pipeline=pipeline,
                record_key=key,
                step=step,
                error=error,
                created_at=self._clock(),
            )
        )

    def record_errors(self, run_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(record_errors)
                .where(record_errors.c.run_id == run_id)
                .order_by(record_errors.c.id)
            )
            return [dict(row._mapping) for row in rows]

    def record_schema_change(
        self, conn: sa.Connection, table: str, column: str, column_type: str, run_id: int | None
    ) -> None:
        conn.execute(
            sa.insert(schema_changes).values(
                table_name=table,
                column_name=column,
                column_type=column_type,
                run_id=run_id,
                created_at=self._clock(),
            )
        )
