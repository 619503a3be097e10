"""WriterLock: batch writers of several processes on one SQLite file take turns, and the
next is woken as soon as the lock is let go (store/_writer_lock.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from interlink.store import WriterLock


def test_a_second_process_waits_and_is_woken_at_once(tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from interlink.store import WriterLock
                lock = WriterLock({str(database)!r})
                with lock.held():
                    print("held", flush=True)
                    time.sleep(0.6)
                    print(time.time(), flush=True)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    lock = WriterLock(database)
    asked = time.monotonic()
    with lock.held():
        got = time.time()
        waited = time.monotonic() - asked
    released = float(holder.stdout.readline())
    holder.wait(10)
    holder.stdout.close()
    lock.close()
    assert waited > 0.3, "the lock was not exclusive"
    assert got - released < 0.05, f"woken {got - released:.3f} s after the release"
    assert (tmp_path / "x.db.writer-lock").exists()


def test_it_is_reentrant_across_uses_in_one_process(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "y.db")
    for _ in range(3):
        with lock.held():
            pass
    lock.close()
    lock.close()  # twice is harmless
