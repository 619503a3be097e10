"""A lock that server processes sharing one SQLite file take around their write batches.

SQLite lets one writer at a time into a file; a connection that finds the file locked
waits in `busy_timeout`, which polls with sleeps that grow to 100 ms. Two `interlink serve`
processes committing webhook batches into one file (`--processes 2`) then spend their
time asleep: measured, two processes stored fewer deliveries per second than one.

`WriterLock` queues them on an advisory `flock` of a file beside the database
(`<database>.writer-lock`) instead: a process waiting for it is woken by the kernel the
moment the other releases it, and SQLite's own lock is then free. It orders interlink's
batch writers among themselves only; every other writer still meets SQLite's lock, and
correctness never depends on this one (it is only about waiting well). So a lock file that
cannot be opened (a read-only folder, a file another user created) costs the waiting, not
the writes: it is opened read-only if it cannot be written (`flock` needs no more), and
if it cannot be opened at all the batches go ahead without it, with one warning.

The file is created with the database's permission bits (0644 when there is no database
yet), as SQLite creates its `-wal` and `-shm` files: every user who may write the
database may take the lock. It is opened close-on-exec.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["WriterLock"]

log = logging.getLogger("interlink.store")


class WriterLock:
    """An exclusive `flock` on `<database>.writer-lock`, held with `with lock.held():`."""

    def __init__(self, database: str | os.PathLike[str]) -> None:
        self.database = Path(database)
        self.path = Path(f"{os.fspath(database)}.writer-lock")
        self._fd: int | None = None
        self._warned = False

    def _open(self) -> int | None:
        """The lock file's descriptor; None while it cannot be opened (tried again at each
        batch, warned about once)."""
        if self._fd is not None:
            return self._fd
        try:
            self._fd = self._open_file()
        except OSError as exc:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "cannot open %s (%s); server processes write without taking turns, "
                        "waiting in SQLite's busy timeout instead",
                        self.path,
                        exc.strerror or exc,
                    )
        return self._fd

    def _open_file(self) -> int:
        """Open the lock file for writing, creating it with the database's permissions
        (past the umask, as SQLite does for its own files)."""
        try:
            mode = self.database.stat().st_mode & 0o666
        except OSError:
            mode = 0o644
        flags = os.O_RDWR | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            return os.open(self.path, flags)
        with contextlib.suppress(OSError):
            os.fchmod(fd, mode)
        return fd

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        fd = self._open()
        if fd is None:
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
