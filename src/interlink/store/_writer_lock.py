"""A lock that server processes sharing one SQLite file take around their write batches.

SQLite lets one writer at a time into a file; a connection that finds the file locked
waits in `busy_timeout`, which polls with sleeps that grow to 100 ms. Two `interlink serve`
processes committing webhook batches into one file (`--processes 2`) then spend their
time asleep: measured, two processes stored fewer deliveries per second than one.

`WriterLock` queues them on an advisory `flock` of a file beside the database
(`<database>.writer-lock`) instead: a process waiting for it is woken by the kernel the
moment the other releases it, and SQLite's own lock is then free. It orders interlink's
batch writers among themselves only; every other writer still meets SQLite's lock, and
correctness never depends on this one (it is only about waiting well).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["WriterLock"]


class WriterLock:
    """An exclusive `flock` on `<database>.writer-lock`, held with `with lock.held():`."""

    def __init__(self, database: str | os.PathLike[str]) -> None:
        self.path = Path(f"{os.fspath(database)}.writer-lock")
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        fd = self._open()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
