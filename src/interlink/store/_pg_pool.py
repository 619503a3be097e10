"""The run path's transactions on PostgreSQL: psycopg connections held between batches,
each answering `Connection` (as `SqliteFile`'s do on an SQLite file).

A run commits one transaction per page. Through SQLAlchemy each one checked a connection
out of the engine's pool (and pinged it: `pool_pre_ping`), and every statement of the
batch's books went through its execution machinery: about a fifth of a 100,000-record
run's time on a 2-core machine (py-spy, docs/benchmarks.md). Here:

- Connections come from the engine's own pool (`Engine.raw_connection`: its URL,
  connect arguments and its ping at check-out), and stay with this pool between
  transactions. One idle longer than `idle_ping` seconds goes back to the engine and
  another is checked out (and so pinged): a database restarted while a run slept costs
  no batch. One a statement broke (the server gone) is invalidated, never reused.
- `begin()` is one transaction: committed on exit, rolled back on an exception.
  Statements are the driver's own SQL and parameters (`%s`, `%(name)s`), as SQLAlchemy's
  `exec_driver_sql` passes them: parameters are always given, so a `%` in a name is
  written `%%` (`quoter`). Errors are psycopg's own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._connection import DriverResult

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["PgConnection", "PgPool"]

IDLE_PING = 10.0
"""Seconds a connection may wait between transactions and be used again unchecked."""


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

    @contextmanager
    def begin_nested(self) -> Iterator[None]:
        """A savepoint: released on exit, rolled back to on an exception."""
        self._savepoints += 1
        name = f"interlink_sp_{self._savepoints}"
        self.driver.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            if not self.driver.broken:  # a lost connection has nothing to roll back
                self.driver.execute(f"ROLLBACK TO SAVEPOINT {name}")
                self.driver.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.driver.execute(f"RELEASE SAVEPOINT {name}")


class PgPool:
    """psycopg connections of one engine, kept between transactions; see the module."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        idle_ping: float = IDLE_PING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._idle_ping = idle_ping
        self._clock = clock
        self._idle: list[tuple[Any, float]] = []  # (SQLAlchemy's pooled connection, since)
        self._lock = threading.Lock()
        self._closed = False

    def _take(self) -> Any:
        stale: list[Any] = []
        taken: Any = None
        now = self._clock()
        with self._lock:
            if self._closed:
                raise RuntimeError("the store was closed")
            while self._idle:
                pooled, since = self._idle.pop()
                if now - since > self._idle_ping:
                    stale.append(pooled)
                    continue
                taken = pooled
                break
        for pooled in stale:
            pooled.close()  # back to the engine, which pings it when it is next taken
        if taken is None:
            taken = self._engine.raw_connection()
        return taken

    def _give_back(self, pooled: Any) -> None:
        driver = pooled.driver_connection
        if driver is None or driver.broken or driver.closed:
            pooled.invalidate()
            return
        with self._lock:
            if not self._closed:
                self._idle.append((pooled, self._clock()))
                return
        pooled.close()

    @contextmanager
    def begin(self) -> Iterator[PgConnection]:
        """A transaction: committed on exit, rolled back on an exception."""
        pooled = self._take()
        driver = pooled.driver_connection
        try:
            try:
                yield PgConnection(driver)
            except BaseException:
                _roll_back(driver)
                raise
            driver.commit()
        finally:
            self._give_back(pooled)

    def close(self) -> None:
        """Hand every idle connection back to the engine; one in use goes back after."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, []
        for pooled, _ in idle:
            pooled.close()


def _roll_back(driver: Any) -> None:
    """Roll back after an error, which goes up alone: a connection that cannot roll back
    is closed (and so never reused)."""
    if driver.broken or driver.closed:
        return
    try:
        driver.rollback()
    except Exception:
        driver.close()
