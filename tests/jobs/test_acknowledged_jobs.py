"""A killed process loses no acknowledged job (issue 5): every enqueue that returned, and
every completion a worker committed, is in the database after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from interlink.config import InterlinkConfig
from interlink.jobs import JobSpec, open_queue
from interlink.store import Store

PRODUCER = """
import sys
from interlink.config import InterlinkConfig
from interlink.jobs import JobSpec, open_queue
from interlink.store import Store

config = InterlinkConfig.model_validate({"database": sys.argv[1]})
store = Store.open(config.database)
queue = open_queue(config, store)
n = 0
while True:
    job = queue.enqueue(JobSpec("noop", {"n": n}))
    sys.stdout.write(f"{job.id}\\n")
    sys.stdout.flush()
    n += 1
"""

WORKER = """
import asyncio, sys
from interlink.config import InterlinkConfig
from interlink.jobs import JobKinds, open_queue
from interlink.store import Store

config = InterlinkConfig.model_validate({"database": sys.argv[1]})
store = Store.open(config.database)
queue = open_queue(config, store)
asyncio.run(queue.work(JobKinds.default(), concurrency=8))
"""


def test_every_acknowledged_enqueue_survives_sigkill(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'ack.db'}"
    Store.open(url).close()
    acknowledged: set[int] = set()
    for round_ in range(3):
        producer = subprocess.Popen(
            [sys.executable, "-c", PRODUCER, url], stdout=subprocess.PIPE, text=True
        )
        assert producer.stdout is not None
        acknowledged.add(int(producer.stdout.readline()))  # it is up and enqueueing
        deadline = time.monotonic() + 0.2 + 0.1 * round_
        while time.monotonic() < deadline:
            line = producer.stdout.readline()
            if line:
                acknowledged.add(int(line))
        os.kill(producer.pid, signal.SIGKILL)
        producer.wait()
        # whatever it printed before dying was acknowledged
        acknowledged.update(int(line) for line in producer.stdout.read().split())
        producer.stdout.close()
    config = InterlinkConfig.model_validate({"database": url})
    store = Store.open(config.database)
    queue = open_queue(config, store)
    with store.engine.connect() as conn:
        stored = {row[0] for row in conn.exec_driver_sql("SELECT id FROM interlink_jobs")}
    assert len(acknowledged) > 30
    assert acknowledged <= stored
    queue.close()
    store.close()


def test_every_committed_completion_survives_a_killed_worker(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'done.db'}"
    config = InterlinkConfig.model_validate({"database": url})
    store = Store.open(config.database)
    queue = open_queue(config, store)
    with store.transaction() as conn:
        for n in range(6_000):
            queue.enqueue(JobSpec("noop", {"n": n}), conn=conn)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, url])
    deadline = time.monotonic() + 30
    while queue.counts()["completed"] < 1000:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    seen_completed = queue.counts()["completed"]
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    after = queue.counts()
    # nothing a reader saw committed is gone, and the killed worker's claims are still
    # running (to be reclaimed), not lost
    assert after["completed"] >= seen_completed
    assert sum(after.values()) == 6_000
    assert after["queued"] + after["running"] + after["completed"] == 6_000
    queue.close()
    store.close()
