"""Pipeline jobs end to end: the queue runs real pipelines against the sandbox shop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.jobs import JobKinds, open_queue, pipeline_job, run_worker
from interlink.sandbox import SandboxServer
from interlink.store import Store
from tests.slow_shop import customers_config, slow_shop

RECORDS = 3000


@pytest.fixture(scope="module")
def shop() -> Iterator[SandboxServer]:
    with slow_shop(RECORDS) as server:
        yield server


def make(tmp_path, url: str) -> tuple[InterlinkConfig, Store, Any]:
    config = customers_config(f"sqlite:///{tmp_path / 'jobs.db'}", url)
    store = Store.open(config.database)
    return config, store, open_queue(config, store)


def count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM customers").scalar_one())


async def until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_a_pipeline_job_runs_the_pipeline_and_keeps_its_counts(tmp_path, shop) -> None:
    config, store, queue = make(tmp_path, shop.url)
    job = queue.enqueue(pipeline_job("customers"))
    stats = asyncio.run(run_worker(config, store, queue, burst=True))
    done = queue.get(job.id)
    assert done is not None and done.status == "completed", done
    assert stats.completed == 1
    assert done.result is not None
    assert done.result["status"] == "succeeded"
    assert done.result["counts"]["read"] == RECORDS
    assert done.result["counts"]["created"] == RECORDS
    assert done.progress is not None and done.progress["counts"]["read"] == RECORDS
    run = store.run(done.result["run_id"])
    assert run is not None and run["status"] == "succeeded"
    assert count(store) == RECORDS


def test_cancelling_a_running_pipeline_stops_it_at_a_batch_and_the_next_run_resumes(
    tmp_path, shop
) -> None:
    config, store, queue = make(tmp_path, shop.url)
    job = queue.enqueue(pipeline_job("customers"))

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_worker(config, store, queue, stop=stop))
        await until(lambda: (queue.get(job.id).progress or {}).get("counts", {}).get("read"))
        queue.cancel(job.id)
        await until(lambda: queue.get(job.id).done)
        stop.set()
        await task

    asyncio.run(go())
    cancelled = queue.get(job.id)
    assert cancelled is not None and cancelled.status == "cancelled"
    written = count(store)
    assert 0 < written < RECORDS
    [last] = store.runs("customers")
    assert last["status"] == "cancelled"

    again = queue.enqueue(pipeline_job("customers"))
    asyncio.run(run_worker(config, store, queue, burst=True))
    resumed = queue.get(again.id)
    assert resumed is not None and resumed.status == "completed"
    assert resumed.result is not None and resumed.result["resumed"] is True
    assert count(store) == RECORDS


def test_a_stopping_worker_hands_the_pipeline_back_and_another_finishes_it(tmp_path, shop) -> None:
    config, store, queue = make(tmp_path, shop.url)
    job = queue.enqueue(pipeline_job("customers"))

    async def first_worker() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_worker(config, store, queue, stop=stop))
        await until(lambda: (queue.get(job.id).progress or {}).get("counts", {}).get("read"))
        stop.set()  # as SIGTERM does
        await task

    asyncio.run(first_worker())
    handed_back = queue.get(job.id)
    assert handed_back is not None
    assert (handed_back.status, handed_back.attempts) == ("queued", 0)
    asyncio.run(run_worker(config, store, queue, burst=True))
    done = queue.get(job.id)
    assert done is not None and done.status == "completed" and done.attempts == 1
    assert done.result is not None and done.result["resumed"] is True
    assert count(store) == RECORDS


def test_two_jobs_of_one_pipeline_never_run_at_once(tmp_path, shop) -> None:
    config, store, queue = make(tmp_path, shop.url)
    first = queue.enqueue(pipeline_job("customers"))
    second = queue.enqueue(pipeline_job("customers", full_refresh=True))
    asyncio.run(
        run_worker(config, store, queue, kinds=JobKinds.default(), concurrency=4, burst=True)
    )
    a, b = queue.get(first.id), queue.get(second.id)
    assert a is not None and b is not None
    assert (a.status, b.status) == ("completed", "completed")
    assert a.finished_at is not None and b.started_at is not None
    assert a.finished_at <= b.started_at
    runs = store.runs("customers")
    assert [run["status"] for run in runs] == ["succeeded", "succeeded"]
