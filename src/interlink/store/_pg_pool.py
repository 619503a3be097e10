"""The run path's transactions on PostgreSQL: psycopg connections held between batches,
each answering `Connection` (as `SqliteFile`'s do on an SQLite file).

A run commits one transaction per page. Through SQLAlchemy each one checked a connection
out of the engine's pool (and pinged it: `pool_pre_ping`), and every statement of the
batch's books went through its execution machinery; and opening the database imported
SQLAlchemy at all (about 0.1 s of every process). Here:

- Connections are psycopg's own, opened with what the database URL says
  (`store._pg_url.PgUrl`, read as SQLAlchemy reads it), and kept between transactions.
  One idle longer than `idle_ping` seconds is pinged before it is used again, and
  replaced when the ping fails: a database restarted while a run slept costs no batch.
  One a statement broke (the server gone) is closed, never reused. At most `MAX_SIZE`
  are open at once; a transaction waits up to `WAIT` seconds for one.
- `begin()` is one transaction: committed on exit, rolled back on an exception;
  `connect()` the same for reading. Statements are the driver's own SQL and parameters
  (`%s`, `%(name)s`), as SQLAlchemy's `exec_driver_sql` passes them: parameters are
  always given, so a `%` in a name is written `%%` (`quoter`). Errors are psycopg's own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from ._connection import DriverResult, savepoint

__all__ = ["PgConnection", "PgPool"]

IDLE_PING = 10.0
"""Seconds a connection may wait between transactions and be used again unchecked."""

MAX_SIZE = 15
"""Connections a pool holds at most, in use and idle (SQLAlchemy's default pool: 5 and 10
more): a server's many threads wait for one rather than open more than PostgreSQL
takes."""

WAIT = 30.0
"""Seconds a transaction waits for a connection when all are in use, then fails."""


class _Dialect:
    name = "postgresql"


class PgConnection:
    """A psycopg connection inside one of `PgPool`'s transactions."""

    dialect = _Dialect()

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self._savepoints = 0

    def exec_driver_sql(self, statement: str, parameters: Any = None) -> DriverResult:
        """Run `statement`; a list of parameter rows runs it once per row."""
        cursor = self.driver.cursor()
        if isinstance(parameters, list):
            cursor.executemany(statement, parameters)
        else:
            cursor.execute(statement, () if parameters is None else parameters)
        return DriverResult(cursor)

    def begin_nested(self) -> AbstractContextManager[None]:
        """A savepoint: released on exit, rolled back to on an exception (unless the
        connection was lost: nothing to roll back)."""
        self._savepoints += 1
        driver = self.driver
        return savepoint(driver, f"interlink_sp_{self._savepoints}", lambda: not driver.broken)


class PgPool:
    """psycopg connections to one database, kept between transactions; see the module."""

    def __init__(
        self,
        connect_args: dict[str, Any],
        *,
        idle_ping: float = IDLE_PING,
        max_size: int = MAX_SIZE,
        wait: float = WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect_args = connect_args
        self._idle_ping = idle_ping
        self._max_size = max_size
        self._wait = wait
        self._clock = clock
        self._idle: list[tuple[Any, float]] = []  # (psycopg connection, idle since)
        self._free = threading.BoundedSemaphore(max_size)
        self._lock = threading.Lock()
        self._closed = False

    def _open(self) -> Any:
        import psycopg  # PostgreSQL only

        return psycopg.connect(**self._connect_args)

    def _take(self) -> Any:
        now = self._clock()
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the store was closed")
                if not self._idle:
                    break
                driver, since = self._idle.pop()
            if now - since <= self._idle_ping or _answers(driver):
                return driver
            driver.close()
        return self._open()

    def _give_back(self, driver: Any) -> None:
        if driver.broken or driver.closed:
            driver.close()
            return
        with self._lock:
            if not self._closed:
                self._idle.append((driver, self._clock()))
                return
        driver.close()

    @contextmanager
    def begin(self) -> Iterator[PgConnection]:
        """A transaction: committed on exit, rolled back on an exception."""
        if not self._free.acquire(timeout=self._wait):
            raise TimeoutError(
                f"all {self._max_size} of this process's connections to PostgreSQL stayed "
                f"in use for {self._wait:g} s"
            )
        try:
            driver = self._take()
            try:
                try:
                    yield PgConnection(driver)
                except BaseException:
                    _roll_back(driver)
                    raise
                driver.commit()
            finally:
                self._give_back(driver)
        finally:
            self._free.release()

    def connect(self) -> AbstractContextManager[PgConnection]:
        """A connection for reading: a transaction of its own, ended on exit."""
        return self.begin()

    def close(self) -> None:
        """Close every idle connection; one in use closes when it comes back."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, []
        for driver, _ in idle:
            driver.close()


def _answers(driver: Any) -> bool:
    """Whether a connection idle for a while still reaches its server."""
    try:
        driver.execute("SELECT 1")
        driver.rollback()
    except Exception:
        return False
    return True


def _roll_back(driver: Any) -> None:
    """Roll back after an error, which goes up alone: a connection that cannot roll back
    is closed (and so never reused)."""
    if driver.broken or driver.closed:
        return
    try:
        driver.rollback()
    except Exception:
        driver.close()
