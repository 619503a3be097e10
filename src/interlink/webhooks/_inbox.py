"""The inbox: verified deliveries stored durably, with their jobs, before the 2xx.

```python
inbox = Inbox(store, queue)
stored = await inbox.accept(Arrival("shop", "evt_1", "customer.updated", now, body, headers))
# Stored(id=17, duplicate=False, job_id=42)     -> answer 202
inbox.reject(Refusal("shop", "signature_mismatch", 401, message, "10.0.0.7", now))
inbox.close()
```

One writer thread commits for every request waiting at that moment ("group commit"): it
takes every arrival queued since its last commit, and in ONE transaction inserts them
(`ON CONFLICT (source, delivery_id) DO NOTHING`), enqueues a `webhook.process` job per new
one (`Queue.enqueue_many`, so the job exists exactly when its delivery does), records the
jobs on their deliveries and the refusals queued meanwhile, and commits; only then are the
waiting requests answered. On SQLite the writer's connection commits with
`synchronous=FULL`, so an acknowledged delivery survives a power failure, not only a killed
process; the fsync is paid once per batch rather than once per delivery.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from interlink.config import DEFAULT_REPEAT_WINDOW, InterlinkConfig, JobsConfig
from interlink.jobs import Queue
from interlink.store import Store, WriterLock, deliveries, rejections

from ._inbox_pg import store_batch
from ._job import BATCH_SIZE, batch_job
from ._repeat_window import retire_repeats

__all__ = ["Arrival", "Inbox", "InboxClosedError", "InboxFullError", "Refusal", "Stored"]

log = logging.getLogger("interlink.webhooks")

MAX_BATCH = 512
"""At most this many deliveries in one transaction."""
MAX_BATCH_BYTES = 16 * 1024 * 1024
"""At most this many bytes of bodies in one transaction (a delivery larger than that goes
alone). A PostgreSQL batch is one statement whose parameters the driver copies; a backlog
of large bodies taken by count alone (512 of 1 MiB) made one statement of half a GiB."""


def batch_length(bodies: Sequence[int], max_count: int = MAX_BATCH) -> int:
    """How many of the waiting deliveries, whose body sizes are `bodies` in order, go into
    the next transaction: at most `max_count` and MAX_BATCH_BYTES, and always one."""
    total = 0
    for taken, size in enumerate(bodies[:max_count]):
        total += size
        if taken and total > MAX_BATCH_BYTES:
            return taken
    return min(len(bodies), max_count)


WRITERS = 1
"""Writer threads on PostgreSQL (SQLite gets one)."""
MAX_WAITING = 10_000
"""Deliveries waiting for the writer; beyond that (or MAX_WAITING_BYTES of their bodies) a
delivery is refused at once (its request answers 503, the sender retries). A writer stuck
on its database (another server process holding the writer lock while it hangs, a
PostgreSQL table lock) must not make the server hold every delivery that arrives
meanwhile, body and all."""
MAX_WAITING_BYTES = 256 * 1024 * 1024
MAX_REFUSALS = 10_000
"""Refusals waiting to be written; beyond that they are counted, not logged (a flood of bad
signatures must not grow memory without bound)."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """A verified delivery, to be stored."""

    source: str
    delivery_id: str
    event_type: str | None
    received_at: float
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Stored:
    """What the inbox did with an arrival: its row id, and whether it was there already
    (then `status` is the stored delivery's status and nothing new was queued)."""

    id: int
    duplicate: bool
    status: str
    job_id: int | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A delivery refused before it was stored (the rejected-deliveries log)."""

    source: str
    reason: str
    status: int
    message: str
    address: str | None
    received_at: float


class InboxClosedError(RuntimeError):
    """The inbox is shutting down and stores nothing more."""


class InboxFullError(RuntimeError):
    """MAX_WAITING deliveries (or MAX_WAITING_BYTES of bodies) already wait for the
    database: this one is not taken."""


_Waiter = tuple[Arrival, asyncio.Future[Stored], asyncio.AbstractEventLoop]


class InboxWriter:
    """One database connection storing batches of arrivals: the inbox's writer thread
    (`Inbox`), and the writer process `interlink serve` runs on SQLite
    (`ProcessInbox`, webhooks/_inbox_process.py)."""

    def __init__(self, store: Store, queue: Queue) -> None:
        self.store = store
        self.queue = queue
        # Both queues keep the config they were opened with; a job's default attempts.
        config: InterlinkConfig | None = getattr(queue, "config", None)
        self._config = config
        self._max_attempts = (config.jobs if config else JobsConfig()).max_attempts
        # Server processes sharing the SQLite file take turns through a lock that wakes
        # the next at once, instead of SQLite's busy_timeout sleeps.
        database = store.engine.url.database
        self._writer_lock = (
            WriterLock(database)
            if store.engine.dialect.name == "sqlite" and database and database != ":memory:"
            else None
        )

    def _log_refusals(self, connection: sa.Connection, refused: Sequence[Refusal]) -> None:
        """Write refusals in a transaction of their own, after the deliveries' commit: a
        refusal that cannot be written never costs a delivery its answer."""
        try:
            with connection.begin():
                connection.execute(sa.insert(rejections), [_refusal_row(r) for r in refused])
        except Exception as exc:
            log.warning("the rejected-deliveries log lost %d lines: %s", len(refused), _short(exc))

    def _connect(self) -> sa.Connection:
        connection = self.store.engine.connect()
        if connection.dialect.name == "postgresql":
            # Each batch is one statement (_inbox_pg.py), committed as it ends.
            connection.execution_options(isolation_level="AUTOCOMMIT")
        elif connection.dialect.name == "sqlite":
            # Durable acknowledgements: this connection's commits fsync the WAL.
            connection.exec_driver_sql("PRAGMA synchronous=FULL")
            connection.commit()
        return connection

    def _release(self, connection: sa.Connection) -> None:
        try:
            if connection.dialect.name == "sqlite" and not connection.invalidated:
                connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
                connection.commit()
            connection.close()
        except Exception:  # pragma: no cover - closing after a broken connection
            log.debug("closing the inbox's connection failed", exc_info=True)

    def _discard(self, connection: sa.Connection) -> None:
        try:
            connection.invalidate()
            connection.close()
        except Exception:  # pragma: no cover
            log.debug("discarding the inbox's connection failed", exc_info=True)

    def _write(self, conn: sa.Connection, batch: Sequence[Arrival]) -> list[Stored]:
        if not batch:
            return []
        # On PostgreSQL the connection is in autocommit: `begin` emits no BEGIN, and the
        # batch's one statement commits as it ends.
        if conn.dialect.name == "postgresql":
            with conn.begin():
                return self._store_postgresql(conn, batch)
        with self._writer_lock.held() if self._writer_lock else nullcontext(), conn.begin():
            return self._store(conn, batch)

    def _store_postgresql(self, conn: sa.Connection, batch: Sequence[Arrival]) -> list[Stored]:
        stored = store_batch(conn, batch, max_attempts=self._max_attempts)
        # Stored before (a retry, a replay by the sender), by a batch before this one or by
        # another writer: their rows as they are now.
        before = self._existing(conn, [k for k in _keys(batch) if k not in stored])
        again = retire_repeats(conn, batch, before, self._repeat_window)
        # On this autocommit connection another writer's retiring of a key is seen at
        # once, its insert a moment later: a key found neither stored nor before is
        # free now, and tried again.
        for _ in range(_RETRIES):
            missing = [
                *again,
                *(a for a in batch if _key(a) not in stored and _key(a) not in before),
            ]
            if not missing:
                break
            stored.update(store_batch(conn, missing, max_attempts=self._max_attempts))
            before = self._existing(conn, [k for k in _keys(batch) if k not in stored])
            again = []
        results: list[Stored] = []
        answered: set[tuple[str, str]] = set()
        for arrival in batch:
            key = (arrival.source, arrival.delivery_id)
            if key in stored:
                row_id, job_id = stored[key]
                results.append(Stored(row_id, key in answered, "pending", job_id))
                answered.add(key)
            elif key in before:
                row_id, status, existing_job, _ = before[key]
                results.append(Stored(row_id, True, status, existing_job))
            else:
                raise RuntimeError(
                    f"delivery {arrival.delivery_id!r} of {arrival.source!r} was neither "
                    f"stored nor found after {_RETRIES} tries (other writers at the same key)"
                )
        return results

    def _repeat_window(self, source: str) -> float:
        """The source's `repeat_window` (webhooks/_repeat_window.py)."""
        hook = self._config.webhooks.get(source) if self._config is not None else None
        return hook.repeat_window if hook is not None else DEFAULT_REPEAT_WINDOW

    def _store(self, conn: sa.Connection, batch: Sequence[Arrival]) -> list[Stored]:
        new = _insert_new(conn, batch)
        before = self._existing(conn, [k for k in _keys(batch) if k not in new])
        again = retire_repeats(conn, batch, before, self._repeat_window)
        if again:
            new.update(_insert_new(conn, again))
            before = {key: row for key, row in before.items() if key not in new}
        # The new deliveries of each source, in jobs of at most BATCH_SIZE; a repeat within
        # the batch is a duplicate of its first.
        by_source: dict[str, list[tuple[str, str]]] = {}
        for arrival in batch:
            key = (arrival.source, arrival.delivery_id)
            group = by_source.setdefault(arrival.source, [])
            if key in new and key not in group:
                group.append(key)
        chunks = [
            keys[start : start + BATCH_SIZE]
            for keys in by_source.values()
            for start in range(0, len(keys), BATCH_SIZE)
        ]
        specs = [batch_job([new[key] for key in chunk], chunk[0][0]) for chunk in chunks]
        job_ids: dict[tuple[str, str], int] = {}
        for chunk, job in zip(chunks, self.queue.enqueue_many(specs, conn), strict=True):
            job_ids.update(dict.fromkeys(chunk, job))
        if job_ids:
            _record_jobs(conn, [(job, new[key]) for key, job in job_ids.items()])
        results: list[Stored] = []
        answered: set[tuple[str, str]] = set()
        for arrival in batch:
            key = (arrival.source, arrival.delivery_id)
            if key in new and key not in answered:
                answered.add(key)
                results.append(Stored(new[key], False, "pending", job_ids[key]))
            elif key in new:
                results.append(Stored(new[key], True, "pending", job_ids[key]))
            else:
                row_id, status, job_id, _ = before[key]
                results.append(Stored(row_id, True, status, job_id))
        return results

    @staticmethod
    def _existing(
        conn: sa.Connection, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, str, int | None, float]]:
        """The stored rows of `keys`: (row id, status, job id, received_at)."""
        if not keys:
            return {}
        query = sa.select(
            deliveries.c.id,
            deliveries.c.source,
            deliveries.c.delivery_id,
            deliveries.c.status,
            deliveries.c.job_id,
            deliveries.c.received_at,
        ).where(sa.tuple_(deliveries.c.source, deliveries.c.delivery_id).in_(list(set(keys))))
        return {
            (row.source, row.delivery_id): (
                int(row.id),
                row.status,
                row.job_id,
                float(row.received_at),
            )
            for row in conn.execute(query)
        }


class Inbox(InboxWriter):
    """Stores deliveries for any number of concurrent requests through one writer thread.

    `accept` is awaited by a request and returns once its delivery is committed (or raises
    the error that kept it from being stored: the request answers 5xx, and the sender
    retries). `reject` queues a refusal and returns at once.
    """

    def __init__(
        self, store: Store, queue: Queue, *, max_batch: int = MAX_BATCH, writers: int = WRITERS
    ) -> None:
        super().__init__(store, queue)
        self.max_batch = max_batch
        self.batches = 0
        """Transactions committed, for tests and the benchmark (deliveries per commit)."""
        self.dropped_refusals = 0
        self._waiting: list[_Waiter] = []
        self._waiting_bytes = 0
        self._refusals: list[Refusal] = []
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._closed = False
        # SQLite has one writer at a time: one thread, one connection. On PostgreSQL a batch
        # is one statement and one commit, and one writer did best (4,200 deliveries/s
        # against 3,800 with three: its batches grow while it commits, docs/benchmarks.md);
        # more can be asked for (`writers`) where the database is far away.
        count = 1 if store.engine.dialect.name == "sqlite" else writers
        self._threads = [
            threading.Thread(target=self._run, name=f"interlink-inbox-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in self._threads:
            thread.start()

    async def accept(self, arrival: Arrival, *, timeout: float | None = None) -> Stored:
        """Store `arrival`; its Stored once committed. TimeoutError after `timeout`
        seconds without a commit (the delivery may still be stored later); InboxFullError
        at once while MAX_WAITING deliveries (MAX_WAITING_BYTES of bodies) wait."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        with self._ready:
            if self._closed:
                raise InboxClosedError("the webhook inbox is shutting down")
            if len(self._waiting) >= MAX_WAITING or (
                self._waiting and self._waiting_bytes + len(arrival.body) > MAX_WAITING_BYTES
            ):
                raise InboxFullError(
                    f"{len(self._waiting)} deliveries ({self._waiting_bytes} bytes) are waiting "
                    "for the database already (the inbox's writer is stuck or slow); this one "
                    "was not taken"
                )
            self._waiting.append((arrival, future, loop))
            self._waiting_bytes += len(arrival.body)
            self._ready.notify()
        if timeout is None:
            return await future
        expiry = loop.call_later(timeout, _expire, future)
        try:
            return await future
        finally:
            expiry.cancel()

    def reject(self, refusal: Refusal) -> None:
        with self._ready:
            if self._closed or len(self._refusals) >= MAX_REFUSALS:
                self.dropped_refusals += 1
                return
            self._refusals.append(refusal)
            self._ready.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Store what is waiting, then stop the writer."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        if self._writer_lock is not None and not any(t.is_alive() for t in self._threads):
            self._writer_lock.close()

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        connection: sa.Connection | None = None
        failures = 0
        try:
            while True:
                with self._ready:
                    while not self._waiting and not self._refusals and not self._closed:
                        self._ready.wait()
                    if not self._waiting and not self._refusals:
                        return  # closed, and nothing is left
                    sizes = [len(w[0].body) for w in self._waiting[: self.max_batch]]
                    taken = batch_length(sizes, self.max_batch)
                    batch = self._waiting[:taken]
                    del self._waiting[:taken]
                    self._waiting_bytes -= sum(len(w[0].body) for w in batch)
                    refused, self._refusals = self._refusals, []
                try:
                    if connection is None or connection.closed or connection.invalidated:
                        connection = self._connect()
                    results = self._write(connection, [w[0] for w in batch])
                except Exception as exc:
                    # Every request of the batch answers 503 (the senders retry); the
                    # thread goes on, with a new connection, after a short pause that
                    # grows while the database stays away.
                    failures += 1
                    log.error("storing %d webhook deliveries failed: %s", len(batch), _short(exc))
                    if connection is not None:
                        self._discard(connection)
                    connection = None
                    _settle(batch, exc)
                    self._requeue_refusals(refused)
                    time.sleep(min(0.05 * 2 ** min(failures, 5), 1.0))
                    continue
                failures = 0
                with self._lock:
                    self.batches += 1
                _settle(batch, results)
                if refused:
                    self._log_refusals(connection, refused)
        except BaseException as exc:  # pragma: no cover - a bug: answer, never hang
            log.exception("the webhook inbox's writer stopped")
            with self._ready:
                waiting, self._waiting = self._waiting, []
                self._waiting_bytes = 0
            _settle(waiting, exc if isinstance(exc, Exception) else InboxClosedError(str(exc)))
            raise
        finally:
            if connection is not None:
                self._release(connection)

    def _requeue_refusals(self, refused: Sequence[Refusal]) -> None:
        with self._ready:
            room = MAX_REFUSALS - len(self._refusals)
            self._refusals[:0] = refused[:room]
            self.dropped_refusals += max(len(refused) - room, 0)


def _short(exc: BaseException) -> str:
    """An error for the log without the statement's parameters (a delivery's body and
    headers are in them): the driver's own first line."""
    cause = getattr(exc, "orig", None) or exc
    first = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {first[0] if first else ''}"


def _keys(batch: Sequence[Arrival]) -> list[tuple[str, str]]:
    return [(a.source, a.delivery_id) for a in batch]


def _key(arrival: Arrival) -> tuple[str, str]:
    return arrival.source, arrival.delivery_id


_RETRIES = 3
"""Inserts of one batch on PostgreSQL before a key that is neither free nor taken fails it
(its requests answer 503, the senders retry)."""


_INSERT_SQLITE = (
    "INSERT INTO interlink_webhook_deliveries (source, delivery_id, event_type, status, "
    "received_at, attempts, body, headers) VALUES {rows} "
    "ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id, source, delivery_id"
)


def _insert_new(conn: sa.Connection, batch: Sequence[Arrival]) -> dict[tuple[str, str], int]:
    """Insert the batch, skipping deliveries already stored; the row ids of the new ones.

    On SQLite one multi-row INSERT through the driver (the statement the group commit is
    for; SQLAlchemy's per-statement work cost as much as SQLite's); on PostgreSQL one
    INSERT .. VALUES of every row (SQLAlchemy's insertmanyvalues).
    """
    if conn.dialect.name == "sqlite":
        raw = conn.connection.driver_connection
        assert raw is not None
        values: list[Any] = []
        for a in batch:
            headers = orjson.dumps(a.headers).decode()
            values.extend((a.source, a.delivery_id, a.event_type, a.received_at, a.body, headers))
        rows = ",".join(["(?, ?, ?, 'pending', ?, 0, ?, ?)"] * len(batch))
        cursor = raw.execute(_INSERT_SQLITE.format(rows=rows), values)
        return {(source, delivery): int(row_id) for row_id, source, delivery in cursor}
    from sqlalchemy.dialects.postgresql import insert

    statement = (
        insert(deliveries)
        .on_conflict_do_nothing(index_elements=[deliveries.c.source, deliveries.c.delivery_id])
        .returning(deliveries.c.id, deliveries.c.source, deliveries.c.delivery_id)
    )
    # In key order: two writers inserting the same keys wait for each other in one order,
    # never each for the other (a deadlock PostgreSQL would break by failing a batch).
    ordered = sorted(batch, key=lambda a: (a.source, a.delivery_id))
    return {
        (row.source, row.delivery_id): int(row.id)
        for row in conn.execute(statement, [_delivery_row(a) for a in ordered])
    }


_RECORD_JOBS_PG = sa.text(
    "UPDATE interlink_webhook_deliveries AS d SET job_id = v.job "
    "FROM unnest(CAST(:jobs AS bigint[]), CAST(:rows AS bigint[])) AS v(job, row_id) "
    "WHERE d.id = v.row_id"
)


def _record_jobs(conn: sa.Connection, pairs: list[tuple[int, int]]) -> None:
    """Set each new delivery's job id: (job id, delivery row id) pairs."""
    if conn.dialect.name == "sqlite":
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.executemany("UPDATE interlink_webhook_deliveries SET job_id = ? WHERE id = ?", pairs)
        return
    conn.execute(
        _RECORD_JOBS_PG,
        {"jobs": [job for job, _ in pairs], "rows": [row_id for _, row_id in pairs]},
    )


def _delivery_row(arrival: Arrival) -> dict[str, Any]:
    return {
        "source": arrival.source,
        "delivery_id": arrival.delivery_id,
        "event_type": arrival.event_type,
        "status": "pending",
        "received_at": arrival.received_at,
        "attempts": 0,
        "body": arrival.body,
        "headers": arrival.headers,
    }


def _refusal_row(refusal: Refusal) -> dict[str, Any]:
    # The columns' lengths: a sender's address is whatever a trusted proxy passed on.
    return {
        "source": refusal.source[:100],
        "reason": refusal.reason[:40],
        "status": refusal.status,
        "message": refusal.message,
        "address": None if refusal.address is None else refusal.address[:100],
        "received_at": refusal.received_at,
    }


def _settle(batch: Sequence[_Waiter], outcome: list[Stored] | Exception) -> None:
    """Answer every request of a batch on its own event loop, one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Stored], Any]]] = {}
    for index, (_, future, loop) in enumerate(batch):
        value = outcome if isinstance(outcome, Exception) else outcome[index]
        by_loop.setdefault(loop, []).append((future, value))
    for loop, pairs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, pairs)
        except RuntimeError:  # the loop is closed: nobody waits for these answers any more
            pass


def _expire(future: asyncio.Future[Stored]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("the delivery was not committed in time"))


def _resolve(pairs: list[tuple[asyncio.Future[Stored], Any]]) -> None:
    for future, value in pairs:
        if future.done():
            continue  # the request went away (client disconnected, server stopping)
        if isinstance(value, Exception):
            future.set_exception(value)
        else:
            future.set_result(value)
