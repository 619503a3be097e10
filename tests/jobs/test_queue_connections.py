"""The SQLite queue keeps a connection per thread that uses it. It kept every one of them
for good, also those of threads that had ended: a server's thread pools replace their
threads, and each replaced thread left a connection (three file descriptors: the file, its
log, its shared memory) open until the process ran out and every request answered 500
"unable to open database file" (found by the jobs API's model test, tests/server/
test_jobs_model.py). A thread's connection now closes when the thread ends."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

from interlink.config import InterlinkConfig
from interlink.jobs import JobFilter, open_queue
from interlink.store import Store


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_threads_connection_closes_when_the_thread_ends(tmp_path: Path) -> None:
    config = InterlinkConfig.model_validate({"database": f"sqlite:///{tmp_path / 'q.db'}"})
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        queue.list(JobFilter(limit=1))  # this thread's connection, kept while it lives
        gc.collect()
        before = _open_files()
        for _ in range(200):  # threads that come and go, as a pool's do
            worker = threading.Thread(target=queue.list, args=(JobFilter(limit=1),))
            worker.start()
            worker.join()
        gc.collect()
        assert _open_files() - before < 10, "the ended threads' connections are closed"
        # The living thread's connection is still there, and still works.
        assert queue.list(JobFilter(limit=1)) == []
    finally:
        queue.close()
        store.close()


def test_close_closes_the_connections_of_threads_still_running(tmp_path: Path) -> None:
    config = InterlinkConfig.model_validate({"database": f"sqlite:///{tmp_path / 'q.db'}"})
    store = Store.open(config.database)
    queue = open_queue(config, store)
    used, release = threading.Event(), threading.Event()

    def hold_one() -> None:
        queue.list(JobFilter(limit=1))
        used.set()
        release.wait(10)

    worker = threading.Thread(target=hold_one)
    worker.start()
    try:
        assert used.wait(10)
        gc.collect()
        before = _open_files()
        queue.close()
        assert _open_files() < before, "the running thread's connection was closed"
    finally:
        release.set()
        worker.join()
        store.close()
