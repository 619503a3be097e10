"""Hostile review (session 8): a real SQLite worker process SIGSTOPped past its lease, then
SIGCONTinued, commits nothing about the job another worker took over meanwhile."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

from interlink.config import InterlinkConfig
from interlink.jobs import JobContext, JobKinds, JobSpec, open_queue
from interlink.jobs._sqlite_queue import SqliteQueue
from interlink.store import Store

LEASE = 1.0

WORKER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from interlink.config import InterlinkConfig
    from interlink.jobs import JobKinds, open_queue
    from interlink.store import Store

    async def stamp(context):
        await asyncio.sleep(context.job.args["sleep"])
        return {"pid": os.getpid()}

    async def main():
        config = InterlinkConfig.model_validate({"database": sys.argv[1], "jobs": {
            "lease": float(sys.argv[2]), "poll_interval": 0.05, "retry_delay": 0.05}})
        store = Store.open(config.database)
        queue = open_queue(config, store)
        kinds = JobKinds.default()
        kinds.register("stamp", stamp)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        stats = await queue.work(kinds, stop=stop)
        print(f"completed={stats.completed} lost={stats.lost}", flush=True)

    asyncio.run(main())
    """
)


def wait_for(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_worker_stopped_past_its_lease_commits_nothing_when_it_resumes(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    config = InterlinkConfig.model_validate(
        {"database": url, "jobs": {"lease": LEASE, "poll_interval": 0.05}}
    )
    store = Store.open(config.database)
    queue = open_queue(config, store)
    assert isinstance(queue, SqliteQueue)
    job = queue.enqueue(JobSpec("stamp", {"sleep": 1.5}))
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    stale = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, str(LEASE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        wait_for(lambda: (queue.get(job.id).worker or "").split(":")[1:2] == [str(stale.pid)])  # type: ignore[union-attr]
        time.sleep(0.2)
        stale.send_signal(signal.SIGSTOP)
        time.sleep(LEASE + 0.5)  # its lease runs out while it cannot renew it

        async def mine(context: JobContext) -> dict[str, Any]:
            return {"pid": os.getpid()}

        kinds = JobKinds.default()
        kinds.register("stamp", mine)
        stats = asyncio.run(queue.work(kinds, burst=True))
        assert (stats.reclaimed, stats.completed) == (1, 1)
        stale.send_signal(signal.SIGCONT)
        time.sleep(2.5)  # it finishes its sleep and tries to acknowledge
        stale.send_signal(signal.SIGTERM)
        out, err = stale.communicate(timeout=30)
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()
    row = queue.get(job.id)
    assert row is not None
    assert (row.status, row.result, row.attempts) == ("completed", {"pid": os.getpid()}, 2)
    assert b"completed=0 lost=1" in out, (out, err[-2000:])
    assert f"job {job.id}: lease lost".encode() in err
    queue.close()
    store.close()
