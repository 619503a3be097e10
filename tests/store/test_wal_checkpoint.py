"""WAL checkpoints on a thread of their own (`store._wal_checkpoint`): the committing
connections leave the copying to the thread, the log stays bounded, the data is whole,
and a thread that fails or is gone (closed, a forked child) leaves SQLite's own
checkpoint to do the work."""

from __future__ import annotations

import logging
import os
import select
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from interlink.store._sqlite_file import SqliteFile
from interlink.store._wal_checkpoint import AUTOCHECKPOINT_PAGES, CHANGES, WalCheckpointer

_ROW = "x" * 400
_THREAD = "interlink-wal-checkpoint"


def _fill(
    db: SqliteFile, batches: int, rows: int = 1_000, pause: float = 0.0, first: int = 0
) -> None:
    with db.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    for batch in range(batches):
        with db.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO t VALUES (?, ?)",
                [(first + batch * rows + i, _ROW) for i in range(rows)],
            )
        time.sleep(pause)  # a run reads its next page here


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == _THREAD]


def _wal_restarts(path: Path) -> int:
    """The log's checkpoint sequence number (bytes 12-15 of its header): how many times
    it started over from its beginning."""
    with open(f"{path}-wal", "rb") as wal:
        return int.from_bytes(wal.read(32)[12:16], "big")


def _wal_pages(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size // 4096 if wal.exists() else 0


def test_the_thread_checkpoints_and_the_log_stays_small(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = SqliteFile(str(path))
    try:
        # 60,000 rows of 400 bytes: about 7,000 pages through the log, a batch about 115.
        _fill(db, 60, pause=0.02)
        assert db.checkpointer.checkpoints >= 10
        # SQLite's own checkpoint waits for AUTOCHECKPOINT_PAGES; the log started over
        # long before, because the thread had copied it by the next commit.
        assert _wal_pages(path) < AUTOCHECKPOINT_PAGES // 4
        assert len(_threads()) == 1
    finally:
        db.close()
    assert not _threads()
    assert not Path(f"{path}-wal").exists()  # the last connection closed and checkpointed
    assert _count(path) == 60_000


def test_commits_back_to_back_keep_the_log_within_the_safety_net(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = SqliteFile(str(path))
    try:
        _fill(db, 200)  # about 23,000 pages, with no pause for the thread to finish
        assert db.checkpointer.checkpoints >= 1
        # The log started over again and again: its header counts each start (SQLite's
        # checkpoint sequence number). Its size is only the furthest it reached, which
        # depends on the CPU the thread got: 4,200-4,800 pages on a quiet machine, 7,000
        # and 14,600 seen in CI runs beside other work; a log that never started over
        # would hold all 23,000.
        assert _wal_restarts(path) >= 1  # 5 here on a quiet machine
        assert _wal_pages(path) < 20_000
    finally:
        db.close()
    assert _count(path) == 200_000


def test_small_commits_wake_the_thread_only_once_enough_rows_piled_up(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = SqliteFile(str(path))
    try:
        _fill(db, 1, rows=CHANGES - 10)
        assert not _threads()  # not started: nothing worth copying yet
        _fill(db, 1, rows=10, first=CHANGES)
        assert len(_threads()) == 1
    finally:
        db.close()
    assert _count(path) == CHANGES


class _FailingConnection(sqlite3.Connection):
    calls = 0

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql.startswith("PRAGMA wal_checkpoint"):
            type(self).calls += 1
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)  # type: ignore[arg-type]


def test_a_failing_checkpoint_is_logged_and_sqlites_own_takes_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "t.db"
    db = SqliteFile(str(path))
    _FailingConnection.calls = 0
    db.checkpointer = WalCheckpointer(
        lambda: sqlite3.connect(path, isolation_level=None, factory=_FailingConnection)
    )
    caplog.set_level(logging.WARNING, logger="interlink.store")
    try:
        _fill(db, 100)  # about 11,000 pages: past the safety net's 8,000
    finally:
        db.close()
    assert _FailingConnection.calls >= 1  # the fault fired
    assert db.checkpointer.checkpoints == 0
    assert "a WAL checkpoint failed: disk I/O error" in caplog.text
    assert _wal_pages(path) == 0  # closed: checkpointed and removed
    assert not _threads()
    assert _count(path) == 100_000


def test_a_thread_that_cannot_connect_leaves_the_commits_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "t.db"
    db = SqliteFile(str(path))

    def refuse() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    db.checkpointer = WalCheckpointer(refuse)
    caplog.set_level(logging.WARNING, logger="interlink.store")
    try:
        _fill(db, 5)
    finally:
        db.close()
    assert "WAL checkpoints stay on the committing thread: unable to open" in caplog.text
    assert _count(path) == 5_000


def test_closed_means_no_thread_and_no_wait(tmp_path: Path) -> None:
    checkpointer = WalCheckpointer(lambda: sqlite3.connect(tmp_path / "t.db"), every=1)
    checkpointer.close()
    checkpointer.wrote(10)
    assert not _threads()
    checkpointer.close()  # twice is fine


def _in_child(work: Callable[[], bytes], timeout: float = 10.0) -> bytes:
    """`work`'s answer, run in a forked child; b"" when the child has not answered
    within `timeout` (it is killed)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, work())
        finally:
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            return b""
        return os.read(read, 16)
    finally:
        os.close(read)
        os.waitpid(pid, 0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_starts_no_thread(tmp_path: Path) -> None:
    checkpointer = WalCheckpointer(lambda: sqlite3.connect(tmp_path / "t.db"), every=1)

    def child() -> bytes:  # its parent's thread does not exist here
        checkpointer.wrote(10)
        return b"1" if any(t.name == _THREAD for t in threading.enumerate()) else b"0"

    assert _in_child(child) == b"0"
    checkpointer.close()


def test_a_thread_that_cannot_start_leaves_the_commit_done(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`wrote` runs after COMMIT: a thread that cannot start (a thread limit, an
    interpreter shutting down) must not turn a committed batch into an error."""
    path = tmp_path / "t.db"
    db = SqliteFile(str(path))
    started: list[str] = []

    def refuse(self: threading.Thread) -> None:
        started.append(self.name)
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    caplog.set_level(logging.WARNING, logger="interlink.store")
    try:
        _fill(db, 5)  # no exception out of begin(): every batch committed
    finally:
        monkeypatch.undo()
        db.close()  # and close() does not trip over a thread that never started
    assert started == [_THREAD]  # the fault fired, once: then it stopped trying
    assert "WAL checkpoints stay on the committing thread: can't start new thread" in caplog.text
    assert _count(path) == 5_000


def test_a_file_dropped_without_close_stops_its_thread(tmp_path: Path) -> None:
    import gc

    db = SqliteFile(str(tmp_path / "t.db"))
    _fill(db, 3)
    assert len(_threads()) == 1
    del db
    gc.collect()
    for _ in range(100):
        if not _threads():
            break
        time.sleep(0.01)
    assert not _threads()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_close_in_a_forked_child_never_waits(tmp_path: Path) -> None:
    """A child forked while another thread held the checkpointer's lock has a copy of
    that lock held for ever: its `close` must not take it."""
    checkpointer = WalCheckpointer(lambda: sqlite3.connect(tmp_path / "t.db"), every=1)

    def child() -> bytes:
        checkpointer.close()
        return b"1"

    with checkpointer._wake:  # held, as by another thread, at the fork
        answer = _in_child(child)
    assert answer == b"1"
    checkpointer.close()
