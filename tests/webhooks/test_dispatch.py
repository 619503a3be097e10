"""Processing stored deliveries on the real queue (SQLite, and Procrastinate on PostgreSQL):
actions by event type, statuses, retries then the dead letter, coalesced runs, and the
import of the one record an event names against the real sandbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.jobs import (
    PIPELINE_KIND,
    JobContext,
    JobFilter,
    JobKinds,
    JobSpec,
    Queue,
    open_queue,
    pipeline_job,
)
from interlink.sandbox import SandboxServer, create_shop_app
from interlink.store import Store, get_delivery, jobs as jobs_table
from interlink.webhooks import PROCESS_KIND, Arrival, Inbox, job_kinds, process_delivery
from tests.jobs.procrastinate_schema import fresh_schema
from tests.webhooks import handlers

TOKEN = "dispatch-token"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dispatch.db'}"
        return
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_dispatch") as url:
        yield url


@pytest.fixture(scope="module")
def shop() -> Iterator[SandboxServer]:
    with SandboxServer(create_shop_app(records=200, seed=5, token=TOKEN)) as server:
        yield server


ACTIONS: dict[str, Any] = {
    "customer.imported": {"run": "customers", "record": "data.id"},
    "customer.*": {"run": "customers"},
    "order.created": {"handler": "tests.webhooks.handlers:remember"},
    "order.paid": {"handler": "tests.webhooks.handlers:remember_async"},
    "order.broken": {"handler": "tests.webhooks.handlers:explode"},
    "ping": "ignore",
}


class Rig:
    def __init__(self, database: str, shop_url: str) -> None:
        self.config = InterlinkConfig.model_validate(
            {
                "database": database,
                "jobs": {"retry_delay": 0.01, "retry_max_delay": 0.02, "poll_interval": 0.05},
                "connections": {
                    "shop": {"base_url": shop_url, "auth": {"type": "bearer", "token": TOKEN}}
                },
                "resources": {
                    "shop": {
                        "customers": {
                            "path": "/customers",
                            "records": "data",
                            "paginate": {"type": "offset", "page_size": 100},
                        }
                    }
                },
                "pipelines": {
                    "customers": {"source": "shop.customers", "destination": {"sql": "customers"}}
                },
                "webhooks": {
                    "shop": {
                        "scheme": "github",
                        "secret": "s3cret",
                        "max_attempts": 2,
                        "actions": ACTIONS,
                    }
                },
            }
        )
        self.store = Store.open(self.config.database)
        self.queue: Queue = open_queue(self.config, self.store)
        self.inbox = Inbox(self.store, self.queue)
        self.runs: list[int] = []

    def deliver(self, event: str, body: dict[str, Any], delivery_id: str) -> int:
        import orjson

        arrival = Arrival(
            "shop",
            delivery_id,
            event,
            time.time(),
            orjson.dumps(body),
            {"x-github-event": event},
        )
        return asyncio.run(self.inbox.accept(arrival)).id

    def work(self, *, pipelines: bool = False, concurrency: int = 4) -> None:
        kinds = job_kinds() if pipelines else JobKinds({PROCESS_KIND: process_delivery})
        if not pipelines:

            async def counted(context: JobContext) -> None:
                self.runs.append(context.job.id)

            kinds.register(PIPELINE_KIND, counted)
        deadline = time.monotonic() + 30
        while True:  # bursts until no job is queued (retries come back after a delay)
            asyncio.run(self.queue.work(kinds, concurrency=concurrency, burst=True))
            if self.queue.counts()["queued"] == 0 or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def close(self) -> None:
        self.inbox.close()
        self.queue.close()
        self.store.close()


@pytest.fixture
def rig(database: str, shop: SandboxServer) -> Iterator[Rig]:
    handlers.SEEN.clear()
    rig = Rig(database, shop.url)
    yield rig
    rig.close()


def test_handlers_get_the_parsed_event_and_their_result_is_kept(rig: Rig) -> None:
    first = rig.deliver("order.created", {"order": {"id": 9}}, "d1")
    second = rig.deliver("order.paid", {"order": {"id": 10}}, "d2")
    rig.work()
    assert sorted(e.payload["order"]["id"] for e in handlers.SEEN) == [9, 10]
    event = next(e for e in handlers.SEEN if e.delivery_id == "d1")
    assert (event.source, event.event_type, event.attempt, event.id) == (
        "shop",
        "order.created",
        1,
        first,
    )
    for row_id in (first, second):
        delivery = get_delivery(rig.store.engine, row_id)
        assert delivery is not None and delivery.status == "processed"
        assert delivery.result is not None and delivery.result["action"] == "handler"
        assert delivery.result["returned"]["order"] in (9, 10)
        assert delivery.attempts == 1 and delivery.processed_at is not None


def test_ignore_and_unmatched_events_are_ignored_with_the_reason(rig: Rig) -> None:
    ping = rig.deliver("ping", {}, "p1")
    other = rig.deliver("invoice.paid", {}, "p2")
    rig.work()
    shown = {d: get_delivery(rig.store.engine, d) for d in (ping, other)}
    assert shown[ping] is not None and shown[ping].status == "ignored"
    assert shown[other] is not None and shown[other].status == "ignored"
    assert shown[other].result == {"reason": "no action for event type 'invoice.paid'"}


def test_a_failing_handler_is_retried_then_dead_lettered(rig: Rig) -> None:
    row_id = rig.deliver("order.broken", {"n": 1}, "b1")
    rig.work()
    delivery = get_delivery(rig.store.engine, row_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert delivery.last_error == "RuntimeError: the handler broke on attempt 2"
    assert [e.attempt for e in handlers.SEEN] == [1, 2]
    job = rig.queue.get(delivery.job_id or 0)
    assert job is not None and job.status == "failed"


def test_a_burst_of_events_makes_one_run(rig: Rig) -> None:
    ids = [rig.deliver("customer.updated", {"data": {"id": n}}, f"u{n}") for n in range(30)]
    rig.work(concurrency=1)  # every delivery is processed before the run starts
    results = [get_delivery(rig.store.engine, i) for i in ids]
    assert all(d is not None and d.status == "processed" for d in results)
    jobs = {d.result["job_id"] for d in results if d is not None and d.result}
    assert len(jobs) == 1, jobs
    assert sum(1 for d in results if d is not None and d.result and d.result["coalesced"]) == 29
    queued = rig.queue.list(JobFilter(kind=PIPELINE_KIND))
    assert len(queued) == 1
    assert len(rig.runs) == 1, "the pipeline ran more than once for one burst"


def test_a_burst_met_by_a_busy_worker_makes_few_runs(rig: Rig) -> None:
    """A run may start (and end) while the burst is still being processed; the events
    after its start need one more run (it may have read before their change), never one
    each: at any time at most one run waits."""
    for n in range(40):
        rig.deliver("customer.updated", {"data": {"id": n}}, f"w{n}")
    rig.work(concurrency=4)
    assert 1 <= len(rig.runs) <= 10, rig.runs
    assert len(rig.runs) == len(set(rig.runs))


def test_a_run_already_started_does_not_swallow_a_later_event(rig: Rig) -> None:
    rig.deliver("customer.updated", {"data": {"id": 1}}, "s1")
    rig.work()
    rig.deliver("customer.updated", {"data": {"id": 1}}, "s2")
    rig.work()
    assert len(rig.runs) == 2


def test_record_imports_the_one_record_the_event_names(rig: Rig, shop: SandboxServer) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    httpx.patch(
        f"{shop.url}/customers/17", json={"first_name": "Webhooked"}, headers=headers
    ).raise_for_status()
    expected = httpx.get(f"{shop.url}/customers/17", headers=headers).json()
    row_id = rig.deliver("customer.imported", {"data": {"id": 17}}, "r1")
    rig.work(pipelines=True)
    delivery = get_delivery(rig.store.engine, row_id)
    assert delivery is not None and delivery.status == "processed", delivery
    assert delivery.result is not None and delivery.result["record_id"] == 17
    with rig.store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, first_name FROM customers")).all()
    assert [tuple(r) for r in rows] == [(17, expected["first_name"])]


def test_an_event_without_the_record_id_fails_at_once(rig: Rig) -> None:
    row_id = rig.deliver("customer.imported", {"data": {}}, "r2")
    rig.work(pipelines=True)
    delivery = get_delivery(rig.store.engine, row_id)
    assert delivery is not None and (delivery.status, delivery.attempts) == ("failed", 1)
    assert "no record id at 'data.id'" in (delivery.last_error or "")


def test_a_job_that_runs_twice_processes_once(rig: Rig) -> None:
    row_id = rig.deliver("order.created", {"order": {"id": 1}}, "t1")
    rig.work()
    delivery = get_delivery(rig.store.engine, row_id)
    assert delivery is not None
    # The same job again, as after a lost acknowledgement.
    rig.queue.enqueue(JobSpec(PROCESS_KIND, {"delivery": row_id, "source": "shop"}))
    rig.work()
    assert len(handlers.SEEN) == 1


def test_a_retry_waiting_out_its_backoff_is_not_joined(rig: Rig) -> None:
    """A queued run that was tried already (or is not due, or is being cancelled) may
    resume past the change or never run: the event gets a fresh run of its own."""
    from interlink.jobs import enqueue_or_join as _queue_run

    retrying = rig.queue.enqueue(pipeline_job("customers"))
    with rig.store.transaction() as conn:
        conn.execute(
            sa.update(jobs_table)
            .where(jobs_table.c.id == retrying.id)
            .values(attempts=1, run_at=time.time() + 3600)
        )
    job_id, joined = _queue_run(rig.store, rig.queue, "customers")
    assert not joined and job_id != retrying.id
    again, joined_again = _queue_run(rig.store, rig.queue, "customers")
    assert joined_again and again == job_id  # the fresh one is shared
    rig.queue.cancel(job_id)
    third, joined_third = _queue_run(rig.store, rig.queue, "customers")
    assert not joined_third and third not in (job_id, retrying.id)


def test_one_failing_delivery_of_a_batch_neither_holds_up_nor_repeats_the_others(
    rig: Rig,
) -> None:
    async def five() -> list[int]:
        kinds = ["order.created", "order.broken", "order.created", "order.paid", "ping"]
        arrivals = [
            Arrival("shop", f"m{n}", kind, time.time(), orjson.dumps({"order": {"id": n}}), {})
            for n, kind in enumerate(kinds)
        ]
        stored = await asyncio.gather(*(rig.inbox.accept(a) for a in arrivals))
        return [s.id for s in stored]

    ids = asyncio.run(five())
    batch_jobs = {get_delivery(rig.store.engine, i).job_id for i in ids}  # type: ignore[union-attr]
    assert len(batch_jobs) == 1, "one commit, one job"
    rig.work()
    shown = [get_delivery(rig.store.engine, i) for i in ids]
    assert [d.status for d in shown if d] == [
        "processed",
        "failed",
        "processed",
        "processed",
        "ignored",
    ]
    broken = shown[1]
    assert broken is not None and broken.attempts == 2
    assert broken.job_id not in batch_jobs  # retried by a job of its own
    calls = [e.delivery_id for e in handlers.SEEN]
    assert sorted(calls) == ["m0", "m1", "m1", "m2", "m3"]
