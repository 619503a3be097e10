"""WAL checkpoints on a thread of their own, off the thread that commits.

In WAL mode a commit appends to the log (the `-wal` file); a checkpoint copies the log's
pages into the database file and fsyncs both, so that the log can start over. SQLite's
own automatic checkpoint runs inside the commit that takes the log past 1,000 pages, on
the committing thread: a run writing 100,000 rows spends about 15% of its loop there.
`WalCheckpointer` runs the same PASSIVE checkpoint (it never waits for, nor blocks, a
reader or a writer) on a thread of its own, which holds no GIL while SQLite copies and
syncs, so the copying overlaps the next page's work on the other core.

`SqliteFile` tells it how many rows each commit changed (`wrote`); once `CHANGES` rows
have piled up it wakes the thread. The committing connections keep SQLite's automatic
checkpoint, at `AUTOCHECKPOINT_PAGES` instead of 1,000, as the safety net: if the thread
falls behind or fails, the log still stops growing there. In a forked child the thread
does not exist; the safety net alone checkpoints there.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable

__all__ = ["AUTOCHECKPOINT_PAGES", "CHANGES", "WalCheckpointer"]

CHANGES = 2_000
"""Rows changed (inserted, updated, deleted) between two checkpoints of the thread."""

AUTOCHECKPOINT_PAGES = 4_000
"""The committing connections' own automatic checkpoint (SQLite's default is 1,000
pages): reached when the thread falls behind, or when commits follow each other so closely
that the log is never wholly copied when the next one starts (the log starts over only
then); that checkpoint finds most pages copied already."""

log = logging.getLogger("interlink.store")


class WalCheckpointer:
    """A thread that checkpoints one SQLite file's log when told enough was written."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], every: int = CHANGES) -> None:
        self._connect = connect
        self._every = every
        self._pending = 0
        self._wake = threading.Condition()
        self._due = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.checkpoints = 0
        """Checkpoints the thread has run (for tests and benchmarks)."""

    def wrote(self, changes: int) -> None:
        """A commit changed `changes` rows; wake the thread once enough have piled up.
        Called after the commit: it never raises (a thread that cannot start leaves the
        checkpoints to SQLite's own)."""
        if changes > 0:  # (sqlite3's 32-bit count may wrap)
            self._pending += changes
        if self._pending < self._every or os.getpid() != self._pid:
            return
        self._pending = 0
        with self._wake:
            if self._stopping:
                return
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name="interlink-wal-checkpoint", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError as exc:  # no thread to be had (a limit, shutdown)
                    self._stopping = True
                    log.warning("WAL checkpoints stay on the committing thread: %s", exc)
                    return
                self._thread = thread
            self._due = True
            self._wake.notify()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and close its
        connection; later `wrote` calls do nothing. In a forked child, which has no such
        thread (and may hold a copy of a lock another thread held), it does nothing."""
        if os.getpid() != self._pid:
            return
        with self._wake:
            self._stopping = True
            thread = self._thread
            self._wake.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        try:
            connection = self._connect()
        except sqlite3.Error as exc:
            log.warning("WAL checkpoints stay on the committing thread: %s", exc)
            return
        try:
            while True:
                with self._wake:
                    while not self._due and not self._stopping:
                        self._wake.wait()
                    if self._stopping:
                        return
                    self._due = False
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the committers' own checkpoint still runs
                    log.warning("a WAL checkpoint failed: %s", exc)
                else:
                    self.checkpoints += 1
        finally:
            connection.close()
