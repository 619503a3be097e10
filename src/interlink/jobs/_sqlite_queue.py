"""`SqliteQueue`: the embedded job queue, in the same SQLite file as everything else.

```
enqueue        INSERT into interlink_jobs (own connection, one commit; or the caller's
               SQLAlchemy connection inside its transaction: the outbox)
work()         one loop per worker process:
  cycle        BEGIN IMMEDIATE
                 acks of the jobs that finished since the last cycle (executemany)
                 claim: ready jobs by priority, id; locks held by running jobs skipped,
                        one job per lock; UPDATE ... status='running', attempts + 1,
                        lease_until = now + lease RETURNING *
               COMMIT                     -> one transaction per batch, not per job
  heartbeat    every lease / 3: renew the leases of this worker's jobs (one UPDATE ...
               RETURNING id, attempts: a job missing from it was taken over, and its
               attempt is told to stop); every quarter second: read cancel_requested of
               its running jobs
  reclaim      every half second: running jobs whose lease ran out, or whose worker
               process on this machine is gone, are queued again (an attempt spent) or,
               at max_attempts, dead-lettered as failed (cancelled, if a cancel was asked
               for); each a compare-and-set on the worker, attempt and lease it read
  fencing      every write about a running job (renewal, progress, acknowledgement) names
               its claim: WHERE id = ? AND worker = ? AND attempts = ?; a write that changes
               no row means the lease was lost, and the attempt's answer is discarded
  idle         PRAGMA data_version every 20 ms (a few microseconds): look for work as
               soon as another connection commits; in-process enqueues wake it at once
```

Claims are atomic because `BEGIN IMMEDIATE` takes SQLite's write lock before reading.
WAL with `synchronous=NORMAL` keeps every acknowledged job (an enqueue that returned, a
completion that was committed) through a killed process; a power loss or OS crash can
lose the last transactions. `jobs.durability: full` sets `synchronous=FULL` on the
queue's connections so a commit is on disk before it returns, at a cost in throughput
(docs/jobs.md, docs/benchmarks.md).

This module is the queue (connections and the Queue methods); `_sqlite_worker.py` is the
worker loop above, and `_sqlite_rows.py` turns rows into `Job`s and back.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.store import JOB_STATUSES, Store, jobs

from ._model import Job, JobFilter, JobSpec
from ._queue import JobKinds, WorkerStats
from ._sqlite_rows import COLUMNS, dumps, job_from_row, new_job
from ._sqlite_worker import SqliteWorker

__all__ = ["SqliteQueue"]


_MANY_CHUNK = 1000
"""Jobs in one INSERT of enqueue_many (8 parameters each; SQLite takes 32,766)."""


class _Held:
    """A thread's connection, closed when the thread's locals (the one reference) go."""

    __slots__ = ("__weakref__", "db")

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __del__(self) -> None:
        self.db.close()


class SqliteQueue:
    """The job queue in the SQLite database of `database:` (the embedded default)."""

    backend: ClassVar[str] = "sqlite"

    def __init__(
        self, store: Store, config: InterlinkConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        url = store.engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            raise ValueError("SqliteQueue needs an SQLite database file")
        self.store = store
        self.config = config
        self.settings = config.jobs
        self.path = os.path.expanduser(url.database)
        self.clock = clock
        self._local = threading.local()
        # Every thread's connection, for `close`; held weakly: a thread that ends drops
        # its own (`_Held`), and it closes then.
        self._connections: weakref.WeakSet[_Held] = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        self.wakers: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        store.ensure_schema()

    # -- connections ------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, made on its first use and closed when the thread ends
        (server thread pools replace their threads: kept for good, their connections ran
        the process out of file descriptors)."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            sync = "FULL" if self.settings.durability == "full" else "NORMAL"
            db.execute(f"PRAGMA synchronous={sync}")
            db.execute("PRAGMA busy_timeout=10000")
            held = _Held(db)
            self._local.held = held
            with self._connections_lock:
                self._connections.add(held)
        return held.db

    def close(self) -> None:
        with self._connections_lock:
            for held in list(self._connections):
                held.db.close()
            self._connections.clear()
        self._local = threading.local()

    def wake(self) -> None:
        for loop, event in list(self.wakers):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: its worker is gone
                pass

    # -- the Queue protocol -----------------------------------------------------------------

    def enqueue(self, spec: JobSpec, *, conn: sa.Connection | None = None) -> Job:
        now = self.clock()
        values = self._row(spec, now)
        if conn is not None:
            return self._enqueue_on(conn, spec, values)
        db = self.connection()
        if spec.idempotency_key is not None:
            found = self._by_idempotency_key(db, spec.idempotency_key)
            if found is not None:
                return found
        try:
            cursor = db.execute(
                "INSERT INTO interlink_jobs (kind, args, status, priority, attempts, "
                "max_attempts, lock, pipeline, run_at, created_at, cancel_requested, "
                "idempotency_key) VALUES (?, ?, 'queued', ?, 0, ?, ?, ?, ?, ?, 0, ?)",
                (
                    spec.kind,
                    dumps(spec.args),
                    spec.priority,
                    values["max_attempts"],
                    spec.lock,
                    spec.pipeline,
                    values["run_at"],
                    now,
                    spec.idempotency_key,
                ),
            )
        except sqlite3.IntegrityError:
            # Another caller inserted the same idempotency key between our look and insert.
            assert spec.idempotency_key is not None
            found = self._by_idempotency_key(db, spec.idempotency_key)
            if found is None:
                raise
            return found
        job_id = cursor.lastrowid
        assert job_id is not None
        self.wake()
        return new_job(job_id, spec, values)

    def _enqueue_on(self, conn: sa.Connection, spec: JobSpec, values: dict[str, Any]) -> Job:
        if spec.idempotency_key is not None:
            row = conn.execute(
                sa.select(jobs.c.id).where(jobs.c.idempotency_key == spec.idempotency_key)
            ).first()
            if row is not None:
                found = self._get_on(conn, row.id)
                assert found is not None
                return found
        inserted = conn.execute(sa.insert(jobs).values(**values)).inserted_primary_key
        assert inserted is not None
        # The caller commits; a worker finds the job on its next look (data_version).
        return new_job(int(inserted[0]), spec, values)

    def enqueue_many(self, specs: Sequence[JobSpec], conn: sa.Connection) -> list[int]:
        ids: list[int] = []
        for start in range(0, len(specs), _MANY_CHUNK):
            ids.extend(self._enqueue_chunk(specs[start : start + _MANY_CHUNK], conn))
        return ids

    def _enqueue_chunk(self, specs: Sequence[JobSpec], conn: sa.Connection) -> list[int]:
        now = self.clock()
        values: list[Any] = []
        for spec in specs:
            if spec.idempotency_key is not None:
                raise ValueError("enqueue_many takes no idempotency keys; use enqueue")
            row = self._row(spec, now)
            values.extend(
                (
                    row["kind"],
                    dumps(row["args"]),
                    row["priority"],
                    row["max_attempts"],
                    row["lock"],
                    row["pipeline"],
                    row["run_at"],
                    now,
                )
            )
        # One multi-row INSERT through the driver, inside the caller's transaction. Rowids
        # of one statement's rows ascend in the order of its VALUES (one writer at a time),
        # so the sorted ids are the specs' ids in order.
        placeholders = ",".join(["(?, ?, 'queued', ?, 0, ?, ?, ?, ?, ?, 0)"] * len(specs))
        raw = conn.connection.driver_connection
        assert raw is not None
        cursor = raw.execute(
            "INSERT INTO interlink_jobs (kind, args, status, priority, attempts, max_attempts, "
            f"lock, pipeline, run_at, created_at, cancel_requested) VALUES {placeholders} "
            "RETURNING id",
            values,
        )
        return sorted(int(row[0]) for row in cursor)

    def _row(self, spec: JobSpec, now: float) -> dict[str, Any]:
        """The new job's row (the columns `Job` is made of, as the insert writes them)."""
        return {
            "kind": spec.kind,
            "args": spec.args,
            "status": "queued",
            "priority": spec.priority,
            "attempts": 0,
            "max_attempts": spec.max_attempts or self.settings.max_attempts,
            "lock": spec.lock,
            "pipeline": spec.pipeline,
            "run_at": now + spec.delay,
            "created_at": now,
            "cancel_requested": False,
            "idempotency_key": spec.idempotency_key,
        }

    def _get_on(self, conn: sa.Connection, job_id: int) -> Job | None:
        row = conn.execute(
            sa.text(f"SELECT {COLUMNS} FROM interlink_jobs WHERE id = :id"), {"id": job_id}
        ).first()
        return None if row is None else job_from_row(tuple(row))

    def _by_idempotency_key(self, db: sqlite3.Connection, key: str) -> Job | None:
        row = db.execute(
            f"SELECT {COLUMNS} FROM interlink_jobs WHERE idempotency_key = ?", (key,)
        ).fetchone()
        return None if row is None else job_from_row(row)

    def get(self, job_id: int) -> Job | None:
        row = (
            self.connection()
            .execute(f"SELECT {COLUMNS} FROM interlink_jobs WHERE id = ?", (job_id,))
            .fetchone()
        )
        return None if row is None else job_from_row(row)

    def list(self, query: JobFilter | None = None) -> list[Job]:
        query = query or JobFilter()
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("status", query.status),
            ("pipeline", query.pipeline),
            ("kind", query.kind),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.before is not None:
            where.append("id < ?")
            params.append(query.before)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = (
            self.connection()
            .execute(
                f"SELECT {COLUMNS} FROM interlink_jobs {clause} ORDER BY id DESC LIMIT ?",
                (*params, query.limit),
            )
            .fetchall()
        )
        return [job_from_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(JOB_STATUSES, 0)
        for status, count in self.connection().execute(
            "SELECT status, count(*) FROM interlink_jobs GROUP BY status"
        ):
            found[status] = count
        return found

    def cancel(self, job_id: int) -> Job | None:
        db = self.connection()
        now = self.clock()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "UPDATE interlink_jobs SET status = 'cancelled', finished_at = ?, "
                "error = 'cancelled before it ran' WHERE id = ? AND status = 'queued'",
                (now, job_id),
            )
            db.execute(
                "UPDATE interlink_jobs SET cancel_requested = 1 "
                "WHERE id = ? AND status = 'running'",
                (job_id,),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return self.get(job_id)

    # -- the worker -------------------------------------------------------------------------

    async def work(
        self,
        kinds: JobKinds,
        *,
        concurrency: int = 1,
        stop: asyncio.Event | None = None,
        burst: bool = False,
    ) -> WorkerStats:
        return await SqliteWorker(self, kinds, concurrency, stop or asyncio.Event(), burst).run()
