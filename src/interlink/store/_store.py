"""`Store`: runs, pipeline state and locks in the configured database.

The sync engine commits a batch of records and `save_progress` in one transaction
(`Store.begin()`), so the checkpoint never runs ahead of the data: a run killed at any
point resumes from the last committed batch.

Its statements are SQL text (`store._books_sql`) that both databases run through
`exec_driver_sql` (`store._connection`): on an SQLite file a run opens, keeps its books
and closes with `sqlite3` alone, and SQLAlchemy (`Store.engine`) loads only for what
needs it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interlink.config import DatabaseConfig
from interlink.errors import LeaseLostError, PipelineLockedError
from interlink.types import WallClock

from ._books_sql import (
    ADD_ERROR,
    ADD_LOCK,
    ADD_SCHEMA_CHANGE,
    BEGIN_RUN,
    COUNTERS,
    CRASHED,
    DROP_LOCK,
    FINISH_RUN,
    FINISH_STOPPED_RUN,
    MAX_ERRORS_KEPT,
    NO_READ,
    READ_LOCK,
    READ_STATE,
    RENEW,
    RUN_COUNTERS,
    SAVE_COUNTS,
    SAVE_PROGRESS_PG,
    SAVE_STATE,
    STATE_COLUMNS,
    STATE_FLAGS,
    STATE_JSON,
    TAKE_OVER,
    escape_like,
    run_row,
)
from ._connection import Connection, dialect_of, dump_json, load_json, named
from ._lock_holders import (
    LOCK_LEASE,
    held_by,
    owner,
    owner_may_be_alive,
)
from ._outstanding import owe
from ._pg_pool import PgPool
from ._pg_url import PgUrl, cannot_connect, is_postgres_url
from ._revision import pg_at_head, sqlite_at_head
from ._sqlite_file import SqliteFile, check_sqlite_file, sqlite_file_path
from ._sqlite_schema import create_sqlite_at_head

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["COUNTERS", "PipelineState", "Store"]


@dataclass(frozen=True)
class PipelineState:
    """Where a pipeline stands between runs."""

    cursor: Any = None
    """The incremental cursor of the last completed read."""
    read_since: Any = None
    checkpoint: dict[str, Any] | None = None
    """Set while a read is unfinished: resume there with `read_since`."""
    pending_cursor: Any = None
    """While a read is unfinished: the highest cursor it has seen (where a resumed read's
    cursor stands). Once it completed: the highest value it saw, past its signpost too
    (`read_to`)."""
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

    @property
    def read_to(self) -> Any:
        """The highest value of the incremental field the last completed read saw, the
        ones past its signpost too (which the next read reads again); None while a read
        is unfinished, or when none recorded it."""
        return self.pending_cursor if self.checkpoint is None else None


class Store:
    """interlink's bookkeeping in the configured database (SQLite or PostgreSQL).

    Built on an SQLAlchemy engine, or by `open` from the database's URL: an SQLite file
    then runs on `sqlite3` connections of its own (`begin`, `read`), PostgreSQL on psycopg
    connections of its own (`PgPool`, also under a Store built on an engine), and `engine`
    is created the first time something asks for it.
    """

    def __init__(
        self,
        engine: sa.Engine | None = None,
        *,
        clock: WallClock = time.time,
        database: str | None = None,
    ) -> None:
        if engine is None and database is None:
            raise ValueError("a Store needs an engine or a database URL")
        path = sqlite_file_path(database) if engine is None and database is not None else None
        if path is not None:
            # Fixed now, as SQLAlchemy's engine did: a later chdir must not move the file.
            path = os.path.abspath(path)
            database = f"sqlite:///{path}"
        self._engine = engine
        self._url = database
        self._sqlite = SqliteFile(path) if path is not None else None
        self._pg: PgPool | None = None
        if engine is not None and engine.dialect.name == "postgresql":
            pg_url: str | None = engine.url.render_as_string(hide_password=False)
        else:
            pg_url = database if engine is None and database and is_postgres_url(database) else None
        if pg_url is not None:
            self._pg = PgPool(PgUrl(pg_url).connect_args())
        self._engine_lock = threading.Lock()
        self._clock = clock
        self.owner = owner()

    @classmethod
    def open(cls, database: DatabaseConfig | str) -> Store:
        """Connect and create interlink's tables when they are missing."""
        url = database.url if isinstance(database, DatabaseConfig) else database
        path = sqlite_file_path(url)
        if path is not None:
            check_sqlite_file(url, path)
            store = cls(database=url)
            if sqlite_at_head(path) or create_sqlite_at_head(path):
                return store  # older tables: upgraded below, with Alembic
        elif is_postgres_url(url):
            import psycopg  # PostgreSQL only

            store = cls(database=url)
            assert store._pg is not None
            try:
                if pg_at_head(store._pg):
                    return store  # else made or refused below, with SQLAlchemy and Alembic
            except psycopg.OperationalError as exc:
                store.close()
                read = PgUrl(url)
                raise cannot_connect(read.shown(), str(exc), read.password) from None
            except BaseException:
                store.close()
                raise
        else:
            from ._engine import create_engine

            store = cls(create_engine(database))
        try:
            store.ensure_schema()
        except BaseException:
            store.close()
            raise
        return store

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine of this database (created on first use for a Store that
        `open` made on an SQLite file)."""
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    from ._engine import create_engine

                    assert self._url is not None
                    self._engine = create_engine(self._url)
        return self._engine

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        if self._sqlite is not None:
            return "sqlite"
        if self._pg is not None:
            return "postgresql"
        name: str = self.engine.dialect.name
        return name

    def ensure_schema(self) -> None:
        from ._migrate import prepare_schema

        prepare_schema(self.engine)

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One SQLAlchemy transaction: committed on exit, rolled back on an exception."""
        with self.engine.begin() as connection:
            yield connection

    def begin(self) -> AbstractContextManager[Connection]:
        """One transaction on the lightest connection this database has (`Connection`):
        committed on exit, rolled back on an exception. What the run path writes in:
        sqlite3 on an SQLite file, psycopg connections held between transactions on
        PostgreSQL (`PgPool`), SQLAlchemy's otherwise."""
        if self._sqlite is not None:
            return self._sqlite.begin()
        if self._pg is not None:
            return self._pg.begin()
        return self.engine.begin()

    def read(self) -> AbstractContextManager[Connection]:
        """A connection for reading, outside any transaction (the lightest one, as
        `begin`)."""
        if self._sqlite is not None:
            return self._sqlite.connect()
        if self._pg is not None:
            return self._pg.connect()
        return self.engine.connect()

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
        values = {
            "pipeline": pipeline,
            "now": now,
            "full_refresh": full_refresh,
            "dry_run": dry_run,
            "trial": trial,
            "resumed": False,
            "errors": "[]",
            "owner": self.owner,
            **dict.fromkeys(COUNTERS, 0),
        }
        with self.begin() as conn:
            if dialect_of(conn) == "sqlite":
                run_id = int(conn.exec_driver_sql(named(conn, BEGIN_RUN), values).lastrowid)
            else:
                sql = named(conn, BEGIN_RUN + " RETURNING id")
                run_id = int(conn.exec_driver_sql(sql, values).scalar_one())
            self._take_lock(conn, pipeline, run_id, now, lease)
        return run_id

    def take_lock(self, pipeline: str, holder: int, *, lease: float = LOCK_LEASE) -> None:
        """Take the pipeline's lock for something other than a run: `holder` is negative
        (`-conflict_id` while a conflict is resolved by hand). PipelineLockedError while a
        run, or another holder, has it; `release_lock` gives it back."""
        if holder >= 0:
            raise ValueError("a lock holder other than a run is a negative number")
        with self.begin() as conn:
            self._take_lock(conn, pipeline, holder, self._clock(), lease)

    def release_lock(self, pipeline: str, holder: int) -> None:
        """Give back a lock `take_lock` took (nothing when it was taken over meanwhile)."""
        with self.begin() as conn:
            conn.exec_driver_sql(named(conn, DROP_LOCK), {"pipeline": pipeline, "run_id": holder})

    def _take_lock(
        self, conn: Connection, pipeline: str, holder: int, now: float, lease: float
    ) -> None:
        """In `conn`'s transaction: the lock for `holder`, taken free or over from an owner
        that is gone or whose lease ran out; PipelineLockedError otherwise."""
        held = conn.exec_driver_sql(named(conn, READ_LOCK), {"pipeline": pipeline}).first()
        mine = {"pipeline": pipeline, "run_id": holder, "owner": self.owner}
        if held is None:
            added = conn.exec_driver_sql(
                named(conn, ADD_LOCK), {**mine, "expires": now + lease}
            ).rowcount
            if added != 1:
                raise PipelineLockedError(
                    "another run took the lock at the same moment", pipeline=pipeline
                )
            return
        held_run, held_owner, held_expires = held
        if held_expires > now and owner_may_be_alive(held_owner):
            raise held_by(pipeline, held_run, held_owner)
        taken = conn.exec_driver_sql(
            named(conn, TAKE_OVER),
            {**mine, "expires": now + lease, "held": held_run, "held_expires": held_expires},
        ).rowcount
        if taken != 1:
            raise PipelineLockedError(
                "another run took the lock at the same moment", pipeline=pipeline
            )
        if held_run >= 0:
            conn.exec_driver_sql(
                named(conn, CRASHED),
                {
                    "run_id": held_run,
                    "now": now,
                    "message": "the process running it stopped without finishing, or its "
                    "lock ran out; another run took it over",
                },
            )

    def heartbeat(self, pipeline: str, run_id: int, lease: float = LOCK_LEASE) -> bool:
        """Renew the run's lock in a transaction of its own; False when it is lost."""
        with self.begin() as conn:
            renewed = conn.exec_driver_sql(
                named(conn, RENEW),
                {"pipeline": pipeline, "run_id": run_id, "expires": self._clock() + lease},
            ).rowcount
        return bool(renewed == 1)

    def hold_lock(
        self, conn: Connection, pipeline: str, run_id: int, lease: float = LOCK_LEASE
    ) -> None:
        """In the caller's transaction, first thing: renew the run's lock, or raise
        LeaseLostError (and the transaction with everything it holds is rolled back).

        The renewal locks the lock's row until the commit, so a takeover, which is a
        compare-and-set on that row, cannot slip in between this check and the commit.
        """
        renewed = conn.exec_driver_sql(
            named(conn, RENEW),
            {"pipeline": pipeline, "run_id": run_id, "expires": self._clock() + lease},
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
        stopped: bool = False,
    ) -> dict[str, int]:
        """Close the run with its final counts and release its lock (if it still holds it);
        the counts recorded.

        A run `stopped` before its end (cancelled, failed) keeps, of each counter, the
        greater of `counts` and what its last committed batch stored: a stop signal can
        land between a batch's commit and the caller counting it."""
        with self.begin() as conn:
            sql = FINISH_STOPPED_RUN[dialect_of(conn)] if stopped else FINISH_RUN
            conn.exec_driver_sql(
                named(conn, sql),
                {
                    "run_id": run_id,
                    "status": status,
                    "now": self._clock(),
                    "errors": dump_json(errors[:MAX_ERRORS_KEPT]),
                    "message": message,
                    "resumed": resumed,
                    "warnings": dump_json(warnings or None),
                    **{k: counts.get(k, 0) for k in COUNTERS},
                },
            )
            conn.exec_driver_sql(named(conn, DROP_LOCK), {"pipeline": pipeline, "run_id": run_id})
            if not stopped:
                return {k: counts.get(k, 0) for k in COUNTERS}
            row = conn.exec_driver_sql(named(conn, RUN_COUNTERS), {"run_id": run_id}).first()
            if row is None:
                return {k: counts.get(k, 0) for k in COUNTERS}
            return dict(zip(COUNTERS, (int(value or 0) for value in row), strict=True))

    def runs(self, pipeline: str | None = None, *, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first: of every pipeline, or of `pipeline`. A pipeline's
        runs include those of each of its connected accounts (kept as `NAME@ACCOUNT`);
        `NAME@ACCOUNT` itself gives that account's alone."""
        where, values = "", dict[str, Any](limit=limit)
        if pipeline is not None and "@" in pipeline:
            where, values["pipeline"] = "WHERE pipeline = :pipeline ", pipeline
        elif pipeline is not None:
            where = "WHERE (pipeline = :pipeline OR pipeline LIKE :accounts ESCAPE '/') "
            values.update(pipeline=pipeline, accounts=escape_like(f"{pipeline}@") + "%")
        sql = f"SELECT * FROM interlink_runs {where}ORDER BY id DESC LIMIT :limit"
        with self.read() as conn:
            rows = conn.exec_driver_sql(named(conn, sql), values).mappings()
            return [run_row(conn, dict(row)) for row in rows]

    def run(self, run_id: int) -> dict[str, Any] | None:
        with self.read() as conn:
            sql = named(conn, "SELECT * FROM interlink_runs WHERE id = :run_id")
            rows = conn.exec_driver_sql(sql, {"run_id": run_id}).mappings()
            found = [run_row(conn, dict(row)) for row in rows]
        return found[0] if found else None

    # -- pipeline state ---------------------------------------------------------------------

    def load_state(self, pipeline: str) -> PipelineState:
        with self.read() as conn:
            row = conn.exec_driver_sql(named(conn, READ_STATE), {"pipeline": pipeline}).first()
            if row is None:
                return PipelineState()
            values = dict(zip(STATE_COLUMNS, row, strict=True))
            for name in STATE_JSON:
                values[name] = load_json(conn, values[name])
        for name in STATE_FLAGS:
            values[name] = bool(values[name])
        return PipelineState(**values)

    def _upsert_state(self, conn: Connection, pipeline: str, **values: Any) -> None:
        values["updated_at"] = self._clock()
        for name in STATE_JSON:
            if name in values:
                values[name] = dump_json(values[name])
        names = list(values)
        update = "UPDATE interlink_state SET " + ", ".join(f"{n} = :{n}" for n in names)
        changed = conn.exec_driver_sql(
            named(conn, update + " WHERE pipeline = :pipeline"), {**values, "pipeline": pipeline}
        ).rowcount
        if not changed:
            insert = (
                f"INSERT INTO interlink_state (pipeline, {', '.join(names)}) "
                f"VALUES (:pipeline, {', '.join(f':{n}' for n in names)})"
            )
            conn.exec_driver_sql(named(conn, insert), {**values, "pipeline": pipeline})

    def save_progress(
        self,
        conn: Connection,
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
        batch just written (once per page: one UPDATE of the state, one of the run; on
        PostgreSQL both in one statement, a round trip fewer)."""
        values = {
            "pipeline": pipeline,
            "read_since": dump_json(read_since),
            "checkpoint": dump_json(checkpoint),
            "pending_cursor": dump_json(pending_cursor),
            "fingerprint": fingerprint,
            "full_read": full_read,
            "staged": staged,
            "run_id": run_id,
            "at": self._clock(),
        }
        counted = dialect_of(conn) == "postgresql"
        if counted:
            values.update({k: counts.get(k, 0) for k in COUNTERS})
        saved = conn.exec_driver_sql(
            named(conn, SAVE_PROGRESS_PG if counted else SAVE_STATE), values
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
        if not counted:
            self.save_counts(conn, run_id, counts)

    def save_counts(self, conn: Connection, run_id: int, counts: dict[str, int]) -> None:
        """In the caller's transaction: the run's counters so far."""
        conn.exec_driver_sql(
            named(conn, SAVE_COUNTS),
            {"run_id": run_id, **{k: counts.get(k, 0) for k in COUNTERS}},
        )

    def complete_read(
        self,
        conn: Connection,
        pipeline: str,
        run_id: int,
        cursor: Any,
        *,
        fingerprint: str | None = None,
        read_to: Any = None,
    ) -> None:
        """In the caller's transaction: the read finished; `cursor` is where the next begins,
        `read_to` the highest value it saw (`PipelineState.read_to`)."""
        values = {**NO_READ, "pending_cursor": read_to}
        self._upsert_state(
            conn, pipeline, cursor=cursor, fingerprint=fingerprint, run_id=run_id, **values
        )

    def abandon_read(self, conn: Connection, pipeline: str, *, read_to: Any = None) -> None:
        """In the caller's transaction: forget the unfinished read (its checkpoint), keeping
        the cursor of the last complete one and `read_to`, what that one saw
        (`PipelineState.read_to`); the next run starts a new read."""
        sql = (
            "UPDATE interlink_state SET updated_at = :at, read_since = NULL, checkpoint = NULL, "
            "pending_cursor = :read_to, full_read = :no, staged = :no WHERE pipeline = :pipeline"
        )
        values = {"at": self._clock(), "no": False, "pipeline": pipeline}
        conn.exec_driver_sql(named(conn, sql), {**values, "read_to": dump_json(read_to)})

    def reset_state(self, conn: Connection, pipeline: str) -> None:
        self._upsert_state(conn, pipeline, cursor=None, fingerprint=None, **NO_READ)

    def record_error(
        self,
        conn: Connection,
        run_id: int,
        pipeline: str,
        *,
        key: str | None,
        step: str,
        error: str,
    ) -> None:
        conn.exec_driver_sql(
            named(conn, ADD_ERROR),
            {
                "run_id": run_id,
                "pipeline": pipeline,
                "key": key,
                "step": step,
                "error": error,
                "now": self._clock(),
            },
        )

    def owe(
        self,
        conn: Connection,
        pipeline: str,
        run_id: int,
        failures: Sequence[tuple[str, str, str]],
    ) -> None:
        """In the caller's transaction: records (key, step, error) that failed in run
        `run_id` are owed to the destination until a run writes them (`store._outstanding`)."""
        owe(conn, pipeline, run_id, failures, self._clock())

    def record_errors(self, run_id: int) -> list[dict[str, Any]]:
        sql = "SELECT * FROM interlink_record_errors WHERE run_id = :run_id ORDER BY id"
        with self.read() as conn:
            rows = conn.exec_driver_sql(named(conn, sql), {"run_id": run_id}).mappings()
            return [dict(row) for row in rows]

    def record_schema_change(
        self,
        conn: Connection,
        table: str,
        column: str,
        column_type: str,
        run_id: int | None,
        *,
        previous_type: str | None = None,
    ) -> None:
        """In the caller's transaction: a column added (or widened from `previous_type`)."""
        conn.exec_driver_sql(
            named(conn, ADD_SCHEMA_CHANGE),
            {
                "table": table,
                "column": column,
                "column_type": column_type,
                "previous": previous_type,
                "run_id": run_id,
                "now": self._clock(),
            },
        )
