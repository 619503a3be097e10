"""An SQLite database file, opened with `sqlite3` alone: its URL, the checks that turn a
file interlink cannot use into a `ConfigError` naming `database`, and connections in
transactions (`SqliteFile.begin`) that satisfy `store._connection.Connection`.

Every connection gets the pragmas of the SQLAlchemy engine's (`store._engine`): WAL,
`synchronous=NORMAL`, foreign keys, a 10 s busy timeout. sqlite3 runs in autocommit mode
and the transactions are interlink's own: `BEGIN IMMEDIATE` takes the file's write lock at
the start (waiting for it through the busy timeout), so a transaction that reads and then
writes is never refused half-way; savepoints nest inside. The log is checkpointed on a
thread of its own (`store._wal_checkpoint`), told after each commit how many rows it
changed.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from interlink.errors import ConfigError

from ._connection import DriverResult, savepoint
from ._wal_checkpoint import AUTOCHECKPOINT_PAGES, WalCheckpointer

__all__ = [
    "SqliteConnection",
    "SqliteFile",
    "check_sqlite_file",
    "schema_lock",
    "set_pragmas",
    "sqlite_file_path",
]

_BUSY_MS = 10_000


def sqlite_file_path(url: str) -> str | None:
    """The file of a plain `sqlite:///PATH` URL, as written (relative or absolute); None for
    anything else: another database, SQLite in memory, a URL with a query string or an
    escape (those open through SQLAlchemy, which reads them)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix) :]
    if not path or path == ":memory:" or any(c in path for c in "?#%"):
        return None
    return path


def check_sqlite_file(shown: str, name: str) -> None:
    """Create the folder of a relative path; refuse a path SQLite could not open or write
    (`shown` is the URL as messages show it)."""
    if "\x00" in name:
        raise _error(shown, "the path contains a NUL character")
    if name.startswith("~"):
        raise _error(shown, "'~' is not expanded in a database URL; write the whole path")
    # SQLite opens the path relative to the working directory.
    path = Path(os.path.abspath(name))
    if path.is_dir():
        raise _error(
            shown,
            f"{path} is a folder, not a database file; name a file in it, such as "
            f"sqlite:///{path / 'interlink.db'}",
        )
    folder = path.parent
    for parent in (folder, *folder.parents):
        if parent.exists() and not parent.is_dir():
            raise _error(shown, f"{parent} is a file, not a folder")
    if not folder.exists():
        if Path(name).is_absolute():
            raise _error(
                shown,
                f"the folder {folder} does not exist; create it (interlink creates the "
                "folder only for a relative path, such as the default .interlink/)",
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _error(shown, f"cannot create the folder {folder}: {_reason(exc)}") from None
    # SQLite writes the file and, beside it, its -wal and -shm files.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _error(shown, f"cannot write in the folder {folder}: permission denied")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise _error(shown, f"cannot read and write {path}: permission denied")
    _open_once(shown, path)


def _open_once(shown: str, path: Path) -> None:
    """Open the file once and read its header: what a folder check cannot see (a file that
    is no database, a file system that refuses) fails here.

    This connection has no pragmas: switching a fresh file to WAL is for the first
    connection under the schema lock (store._migrate), and two processes doing it at once
    make one fail.
    """
    try:
        connection = sqlite3.connect(path, timeout=10)
        try:
            connection.execute("PRAGMA schema_version").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise _error(shown, f"cannot open it: {' '.join(str(exc).split())}") from None


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def _error(shown: str, message: str) -> ConfigError:
    return ConfigError(f"{shown}: {message}", key="database")


@contextmanager
def schema_lock(path: str) -> Iterator[None]:
    """An exclusive lock on the lock file beside the database (`interlink.db` ->
    `interlink.db-schema.lock`), held while interlink's tables are made or upgraded, before
    the first connection (which switches a new file to WAL)."""
    import fcntl

    with open(f"{path}-schema.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def set_pragmas(connection: sqlite3.Connection) -> None:
    """The pragmas every interlink connection to an SQLite file runs with."""
    # WAL: readers never block the writer; NORMAL: a commit survives a killed process
    # (the WAL is fsynced at checkpoints), a power loss may lose the last commits.
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute(f"PRAGMA busy_timeout={_BUSY_MS}")


class _Dialect:
    name = "sqlite"


class SqliteConnection:
    """A sqlite3 connection inside one of `SqliteFile`'s transactions."""

    dialect = _Dialect()

    def __init__(self, driver: sqlite3.Connection) -> None:
        self.driver = driver
        self._savepoints = 0

    def exec_driver_sql(self, statement: str, parameters: Any = None) -> DriverResult:
        """Run `statement`; a list of parameter rows runs it once per row."""
        if isinstance(parameters, list):
            return DriverResult(self.driver.executemany(statement, parameters))
        return DriverResult(self.driver.execute(statement, _parameters(parameters)))

    def begin_nested(self) -> AbstractContextManager[None]:
        """A savepoint: released on exit, rolled back to on an exception (unless SQLite
        rolled back the whole transaction itself)."""
        self._savepoints += 1
        driver = self.driver
        return savepoint(driver, f"interlink_sp_{self._savepoints}", lambda: driver.in_transaction)


def _parameters(parameters: Any) -> Sequence[Any] | dict[str, Any]:
    if parameters is None:
        return ()
    if isinstance(parameters, dict | tuple):
        return parameters
    return tuple(parameters)


class SqliteFile:
    """Connections to one SQLite file, kept between transactions (one per thread that
    needs one at the same time: a run's batch and its lease's heartbeat)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        # The thread holds the path, not this object: a file dropped without `close`
        # stops its thread when it is collected.
        self.checkpointer = WalCheckpointer(
            functools.partial(sqlite3.connect, path, timeout=_BUSY_MS / 1000, isolation_level=None)
        )
        weakref.finalize(self, self.checkpointer.close)

    def _take(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the database {self.path} was closed")
            if self._idle:
                return self._idle.pop()
        connection = sqlite3.connect(
            self.path, timeout=_BUSY_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            set_pragmas(connection)
            # Checkpoints run on `checkpointer`'s thread; this one is the safety net.
            connection.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        except BaseException:
            connection.close()
            raise
        return connection

    def _give_back(self, connection: sqlite3.Connection) -> None:
        with self._lock:
            if not self._closed and not connection.in_transaction:
                self._idle.append(connection)
                return
        connection.close()

    @contextmanager
    def begin(self) -> Iterator[SqliteConnection]:
        """A write transaction: committed on exit, rolled back on an exception."""
        connection = self._take()
        try:
            connection.execute("BEGIN IMMEDIATE")
            before = connection.total_changes
            try:
                yield SqliteConnection(connection)
            except BaseException:
                if connection.in_transaction:  # SQLite may have rolled it back itself
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            self.checkpointer.wrote(connection.total_changes - before)
        finally:
            self._give_back(connection)

    @contextmanager
    def connect(self) -> Iterator[SqliteConnection]:
        """A connection for reading, outside any transaction."""
        connection = self._take()
        try:
            yield SqliteConnection(connection)
        finally:
            self._give_back(connection)

    def close(self) -> None:
        """Close every connection kept; one in use closes when it is given back."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, []
        # The thread's connection first: the last one to close checkpoints what is left.
        self.checkpointer.close()
        for connection in idle:
            connection.close()
