"""`Queue.enqueue_many`: several jobs in the caller's transaction, ids in order, on both
backends; each job runs once, and nothing is queued when the caller rolls back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.jobs import JobContext, JobKinds, JobSpec, Queue, open_queue
from interlink.store import Store
from tests.jobs.procrastinate_schema import fresh_schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Queue]]:
    with contextlib_url(request, tmp_path) as url:
        config = InterlinkConfig.model_validate(
            {"database": {"url": url}, "jobs": {"poll_interval": 0.05, "retry_delay": 0.01}}
        )
        store = Store.open(config.database)
        queue = open_queue(config, store)
        try:
            yield store, queue
        finally:
            queue.close()
            store.close()


def contextlib_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    import contextlib

    if request.param == "sqlite":
        return contextlib.nullcontext(f"sqlite:///{tmp_path / 'q.db'}")
    return fresh_schema(request.getfixturevalue("postgres_url"), "test_many")


def test_ids_come_back_in_order_and_each_job_runs_once(backend: tuple[Store, Queue]) -> None:
    store, queue = backend
    specs = [JobSpec("echo", {"n": n}, priority=n % 3, max_attempts=2) for n in range(50)]
    with store.transaction() as conn:
        ids = queue.enqueue_many(specs, conn)
    assert len(ids) == 50 and len(set(ids)) == 50
    for job_id, spec in zip(ids, specs, strict=True):
        job = queue.get(job_id)
        assert job is not None
        assert (job.args, job.priority, job.max_attempts, job.status) == (
            spec.args,
            spec.priority,
            2,
            "queued",
        )
    seen: list[int] = []

    async def echo(context: JobContext) -> dict[str, Any]:
        seen.append(int(context.job.args["n"]))
        return {}

    kinds = JobKinds.default()
    kinds.register("echo", echo)
    asyncio.run(queue.work(kinds, concurrency=4, burst=True))
    assert sorted(seen) == list(range(50))


def test_a_rolled_back_transaction_queues_nothing(backend: tuple[Store, Queue]) -> None:
    store, queue = backend
    with pytest.raises(RuntimeError), store.transaction() as conn:
        queue.enqueue_many([JobSpec("echo", {"n": 1})], conn)
        raise RuntimeError("the caller's own write failed")
    assert queue.counts()["queued"] == 0


def test_idempotency_keys_are_refused(backend: tuple[Store, Queue]) -> None:
    store, queue = backend
    with pytest.raises(ValueError, match="idempotency"), store.transaction() as conn:
        queue.enqueue_many([JobSpec("echo", idempotency_key="k")], conn)
