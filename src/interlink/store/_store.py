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
from interlink.errors import LeaseLostError, PipelineLockedError
from interlink.types import WallClock

from ._engine import create_engine
from ._schema import locks, record_errors, runs, schema_changes, state

__all__ = ["COUNTERS", "LOCK_LEASE", "PipelineState", "Store", "owner_may_be_alive"]

COUNTERS = ("pages", "read", "created", "updated", "unchanged", "deleted", "failed", "skipped")
_MAX_ERRORS_KEPT = 20
LOCK_LEASE = 60.0
"""Seconds a pipeline lock lasts without renewal; a running run renews it every third of
that from a heartbeat, whatever its pages are doing."""

_SAVE_STATE = (
    sa.update(state)
    .where(state.c.pipeline == sa.bindparam("b_pipeline"))
    .values(
        read_since=sa.bindparam("b_read_since", type_=state.c.read_since.type),
        checkpoint=sa.bindparam("b_checkpoint", type_=state.c.checkpoint.type),
        pending_cursor=sa.bindparam("b_pending_cursor", type_=state.c.pending_cursor.type),
        fingerprint=sa.bindparam("b_fingerprint", type_=state.c.fingerprint.type),
        full_read=sa.bindparam("b_full_read", type_=state.c.full_read.type),
        staged=sa.bindparam("b_staged", type_=state.c.staged.type),
        run_id=sa.bindparam("b_run"),
        updated_at=sa.bindparam("b_at"),
    )
)
# The state's columns when no read is under way.
_NO_READ: dict[str, Any] = {
    "read_since": None,
    "checkpoint": None,
    "pending_cursor": None,
    "full_read": False,
    "staged": False,
}

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
    fingerprint: str | None = None
    """What the source resource looked like when this state was made (`sync` compares)."""
    full_read: bool = False
    """The unfinished read reads the whole source (not only changes since a cursor)."""
    staged: bool = False
    """The unfinished read loads into a staging table, swapped in when it completes."""
    run_id: int | None = None
    """The run that last saved this state."""

    @property
    def interrupted(self) -> bool:
        return self.checkpoint is not None


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_may_be_alive(owner: str | None) -> bool:
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
        try:
            store.ensure_schema()
        except BaseException:
            store.close()
            raise
        return store

    def ensure_schema(self) -> None:
        from ._migrate import prepare_schema

        prepare_schema(self.engine)

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
        trial: bool = False,
        lease: float = LOCK_LEASE,
    ) -> int:
        """Record a new run and take the pipeline's lock; PipelineLockedError if held.

        A lock whose owner process is gone (killed on this machine) or whose lease ran out
        is taken over with a compare-and-set on what was read (two runs taking over the same
        stale lock: one wins, the other gets PipelineLockedError), and the run that held it
        is marked `crashed`.
        """
        now = self._clock()
        with self.transaction() as conn:
            inserted = conn.execute(
                sa.insert(runs).values(
                    pipeline=pipeline,
                    status="running",
                    started_at=now,
                    full_refresh=full_refresh,
                    dry_run=dry_run,
                    trial=trial,
                    errors=[],
                    owner=self.owner,
                    **dict.fromkeys(COUNTERS, 0),
                )
            ).inserted_primary_key
            assert inserted is not None
            run_id = int(inserted[0])
            self._take_lock(conn, pipeline, run_id, now, lease)
        return run_id

    def take_lock(self, pipeline: str, holder: int, *, lease: float = LOCK_LEASE) -> None:
        """Take the pipeline's lock for something other than a run: `holder` is negative
        (`-conflict_id` while a conflict is resolved by hand). PipelineLockedError while a
        run, or another holder, has it; `release_lock` gives it back."""
        if holder >= 0:
            raise ValueError("a lock holder other than a run is a negative number")
        with self.transaction() as conn:
            self._take_lock(conn, pipeline, holder, self._clock(), lease)

    def release_lock(self, pipeline: str, holder: int) -> None:
        """Give back a lock `take_lock` took (nothing when it was taken over meanwhile)."""
        with self.transaction() as conn:
            conn.execute(
                sa.delete(locks).where(locks.c.pipeline == pipeline, locks.c.run_id == holder)
            )

    def _take_lock(
        self, conn: sa.Connection, pipeline: str, holder: int, now: float, lease: float
    ) -> None:
        """In `conn`'s transaction: the lock for `holder`, taken free or over from an owner
        that is gone or whose lease ran out; PipelineLockedError otherwise."""
        held = conn.execute(sa.select(locks).where(locks.c.pipeline == pipeline)).first()
        if held is None:
            try:
                with conn.begin_nested():
                    conn.execute(
                        sa.insert(locks).values(
                            pipeline=pipeline,
                            run_id=holder,
                            owner=self.owner,
                            expires_at=now + lease,
                        )
                    )
            except sa.exc.IntegrityError:
                raise PipelineLockedError(
                    "another run took the lock at the same moment", pipeline=pipeline
                ) from None
            return
        if held.expires_at > now and owner_may_be_alive(held.owner):
            if held.run_id < 0:
                raise PipelineLockedError(
                    f"conflict {-held.run_id} of this pipeline is being resolved by hand "
                    f"({held.owner}); try again when that is done",
                    pipeline=pipeline,
                )
            raise PipelineLockedError(
                f"already running (run {held.run_id}, {held.owner}); "
                "runs of one pipeline never overlap",
                pipeline=pipeline,
            )
        taken = conn.execute(
            sa.update(locks)
            .where(
                locks.c.pipeline == pipeline,
                locks.c.run_id == held.run_id,
                locks.c.expires_at == held.expires_at,
            )
            .values(run_id=holder, owner=self.owner, expires_at=now + lease)
        ).rowcount
        if taken != 1:
            raise PipelineLockedError(
                "another run took the lock at the same moment", pipeline=pipeline
            )
        if held.run_id >= 0:
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == held.run_id, runs.c.status == "running")
                .values(
                    status="crashed",
                    finished_at=now,
                    message="the process running it stopped without finishing, or its "
                    "lock ran out; another run took it over",
                )
            )

    def heartbeat(self, pipeline: str, run_id: int, lease: float = LOCK_LEASE) -> bool:
        """Renew the run's lock in a transaction of its own; False when it is lost."""
        with self.transaction() as conn:
            renewed = conn.execute(
                _RENEW,
                {"b_pipeline": pipeline, "b_run": run_id, "b_expires": self._clock() + lease},
            ).rowcount
        return renewed == 1

    def hold_lock(
        self, conn: sa.Connection, pipeline: str, run_id: int, lease: float = LOCK_LEASE
    ) -> None:
        """In the caller's transaction, first thing: renew the run's lock, or raise
        LeaseLostError (and the transaction with everything it holds is rolled back).

        The renewal locks the lock's row until the commit, so a takeover, which is a
        compare-and-set on that row, cannot slip in between this check and the commit.
        """
        renewed = conn.execute(
            _RENEW, {"b_pipeline": pipeline, "b_run": run_id, "b_expires": self._clock() + lease}
        ).rowcount
        if renewed != 1:
            raise LeaseLostError(
                f"pipeline {pipeline}: run {run_id} no longer holds the pipeline's lock (its "
                "lease ran out and another run took it over); this batch was not written"
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
        warnings: list[str] | None = None,
    ) -> None:
        """Close the run with its final counts and release its lock (if it still holds it)."""
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
                    warnings=warnings or None,
                    **{k: counts.get(k, 0) for k in COUNTERS},
                )
            )
            conn.execute(
                sa.delete(locks).where(locks.c.pipeline == pipeline, locks.c.run_id == run_id)
            )

    def runs(self, pipeline: str | None = None, *, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first: of every pipeline, or of `pipeline`. A pipeline's
        runs include those of each of its connected accounts (kept as `NAME@ACCOUNT`);
        `NAME@ACCOUNT` itself gives that account's alone."""
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        if pipeline is not None and "@" in pipeline:
            query = query.where(runs.c.pipeline == pipeline)
        elif pipeline is not None:
            query = query.where(
                sa.or_(
                    runs.c.pipeline == pipeline,
                    runs.c.pipeline.startswith(f"{pipeline}@", autoescape=True),
                )
            )
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
        return PipelineState(
            row.cursor,
            row.read_since,
            row.checkpoint,
            row.pending_cursor,
            row.fingerprint,
            bool(row.full_read),
            bool(row.staged),
            row.run_id,
        )

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
        fingerprint: str | None = None,
        full_read: bool = False,
        staged: bool = False,
    ) -> None:
        """In the caller's transaction (after `hold_lock`): where the read stands after the
        batch just written.

        It runs once per page, so its statements are built once (module level) and only
        bound here: building them on every call cost more than running them.
        """
        saved = conn.execute(
            _SAVE_STATE,
            {
                "b_pipeline": pipeline,
                "b_read_since": read_since,
                "b_checkpoint": checkpoint,
                "b_pending_cursor": pending_cursor,
                "b_fingerprint": fingerprint,
                "b_full_read": full_read,
                "b_staged": staged,
                "b_run": run_id,
                "b_at": self._clock(),
            },
        ).rowcount
        if not saved:
            self._upsert_state(
                conn,
                pipeline,
                read_since=read_since,
                checkpoint=checkpoint,
                pending_cursor=pending_cursor,
                fingerprint=fingerprint,
                full_read=full_read,
                staged=staged,
                run_id=run_id,
            )
        self.save_counts(conn, run_id, counts)

    def save_counts(self, conn: sa.Connection, run_id: int, counts: dict[str, int]) -> None:
        """In the caller's transaction: the run's counters so far."""
        conn.execute(
            _SAVE_COUNTS, {"b_run": run_id, **{f"n_{k}": counts.get(k, 0) for k in COUNTERS}}
        )

    def complete_read(
        self,
        conn: sa.Connection,
        pipeline: str,
        run_id: int,
        cursor: Any,
        *,
        fingerprint: str | None = None,
    ) -> None:
        """In the caller's transaction: the read finished; `cursor` is where the next begins."""
        self._upsert_state(
            conn, pipeline, cursor=cursor, fingerprint=fingerprint, run_id=run_id, **_NO_READ
        )

    def abandon_read(self, conn: sa.Connection, pipeline: str) -> None:
        """In the caller's transaction: forget the unfinished read (its checkpoint), keeping
        the cursor of the last complete one; the next run starts a new read."""
        conn.execute(
            sa.update(state)
            .where(state.c.pipeline == pipeline)
            .values(updated_at=self._clock(), **_NO_READ)
        )

    def reset_state(self, conn: sa.Connection, pipeline: str) -> None:
        self._upsert_state(conn, pipeline, cursor=None, fingerprint=None, **_NO_READ)

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
        self,
        conn: sa.Connection,
        table: str,
        column: str,
        column_type: str,
        run_id: int | None,
        *,
        previous_type: str | None = None,
    ) -> None:
        """In the caller's transaction: a column added (or widened from `previous_type`)."""
        conn.execute(
            sa.insert(schema_changes).values(
                table_name=table,
                column_name=column,
                column_type=column_type,
                previous_type=previous_type,
                run_id=run_id,
                created_at=self._clock(),
            )
        )
