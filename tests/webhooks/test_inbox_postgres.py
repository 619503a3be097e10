"""The inbox's one-statement batch on PostgreSQL (webhooks/_inbox_pg.py): the deliveries and
their jobs as the general path would write them, chunked, deduplicated, all or nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.jobs import Queue, open_queue
from interlink.store import Store, deliveries, jobs
from interlink.webhooks import BATCH_SIZE, PROCESS_KIND, Arrival, Inbox, batch_job
from tests.jobs.procrastinate_schema import fresh_schema

pytestmark = pytest.mark.postgres


class Rig:
    def __init__(self, url: str) -> None:
        self.config = InterlinkConfig.model_validate({"database": url, "jobs": {"max_attempts": 7}})
        self.store = Store.open(self.config.database)
        self.queue: Queue = open_queue(self.config, self.store)
        self.inbox = Inbox(self.store, self.queue)

    def accept(self, arrivals: list[Arrival]) -> list[Any]:
        async def all_at_once() -> list[Any]:
            return list(await asyncio.gather(*(self.inbox.accept(a) for a in arrivals)))

        return asyncio.run(all_at_once())

    def close(self) -> None:
        self.inbox.close()
        self.queue.close()
        self.store.close()


@pytest.fixture
def rig(postgres_url: str) -> Iterator[Rig]:
    with fresh_schema(postgres_url, "test_inbox_pg") as url:
        rig = Rig(url)
        try:
            yield rig
        finally:
            rig.close()


def arrival(source: str, key: str) -> Arrival:
    return Arrival(source, key, "order.created", time.time(), b'{"id": 1}', {"x": key})


def rows(rig: Rig, table: sa.Table) -> list[sa.RowMapping]:
    with rig.store.engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)).mappings())


def test_a_batch_is_stored_with_its_jobs_as_enqueue_many_writes_them(rig: Rig) -> None:
    # The general path's job, for comparison, column by column.
    with rig.store.engine.begin() as conn:
        (reference,) = rig.queue.enqueue_many([batch_job([999], "shop")], conn)
    batch = [arrival("shop", f"d{n:03}") for n in range(BATCH_SIZE + 10)]
    batch += [arrival("other", "o1"), arrival("shop", "d000")]  # a repeat within the batch
    stored = rig.accept(batch)

    assert [s.duplicate for s in stored] == [False] * (BATCH_SIZE + 11) + [True]
    assert stored[-1].id == stored[0].id and stored[-1].job_id == stored[0].job_id
    delivered = rows(rig, deliveries)
    assert len(delivered) == BATCH_SIZE + 11
    assert {d["headers"]["x"] for d in delivered} == {a.delivery_id for a in batch}
    assert all(d["status"] == "pending" and d["attempts"] == 0 for d in delivered)

    queued = rows(rig, jobs)
    assert queued[0]["id"] == reference
    made = queued[1:]
    # shop: one job of BATCH_SIZE and one of 10; other: one job of 1.
    assert sorted(len(j["args"]["deliveries"]) for j in made) == [1, 10, BATCH_SIZE]
    for job in made:
        mine = [d for d in delivered if d["job_id"] == job["id"]]
        assert job["args"] == {
            "deliveries": sorted(d["id"] for d in mine),
            "source": mine[0]["source"],
        }
        for column in (
            "kind",
            "status",
            "priority",
            "attempts",
            "max_attempts",
            "lock",
            "pipeline",
            "cancel_requested",
        ):
            assert job[column] == queued[0][column], column
        assert job["kind"] == PROCESS_KIND and job["max_attempts"] == 7
        assert abs(job["run_at"] - time.time()) < 60 and job["run_at"] == job["created_at"]
    # Deferred to Procrastinate as enqueue_many defers: same queue, task, args shape.
    with rig.store.engine.connect() as conn:
        deferred = conn.execute(
            sa.text(
                "SELECT p.id, p.queue_name, p.task_name, p.args, p.status FROM "
                "procrastinate_jobs AS p JOIN interlink_jobs AS j ON j.backend_id = p.id "
                "ORDER BY j.id"
            )
        ).all()
    assert len(deferred) == len(queued)
    assert {(d.queue_name, d.task_name, d.status) for d in deferred} == {
        (deferred[0].queue_name, deferred[0].task_name, "todo")
    }
    assert [d.args["job_id"] for d in deferred] == [j["id"] for j in queued]


def test_deliveries_stored_before_get_no_new_job(rig: Rig) -> None:
    first = rig.accept([arrival("shop", "a"), arrival("shop", "b")])
    again = rig.accept([arrival("shop", "b"), arrival("shop", "c")])
    assert again[0].duplicate and again[0].id == first[1].id
    assert again[0].job_id == first[1].job_id
    assert not again[1].duplicate
    queued = rows(rig, jobs)
    assert [j["args"]["deliveries"] for j in queued] == [
        [first[0].id, first[1].id],
        [again[1].id],
    ]


def test_a_batch_of_repeats_only_queues_nothing(rig: Rig) -> None:
    rig.accept([arrival("shop", "a")])
    rig.accept([arrival("shop", "a"), arrival("shop", "a")])
    assert len(rows(rig, jobs)) == 1 and len(rows(rig, deliveries)) == 1


def test_a_failing_statement_stores_neither_deliveries_nor_jobs(rig: Rig) -> None:
    """A delivery id too long for its column fails the batch's one statement: nothing of
    the batch is stored, every request of it is told so (503), none is half-stored."""
    good, bad = arrival("shop", "fine"), arrival("shop", "x" * 400)

    async def both() -> list[Any]:
        return list(
            await asyncio.gather(
                rig.inbox.accept(good), rig.inbox.accept(bad), return_exceptions=True
            )
        )

    outcome = asyncio.run(both())
    failed = [o for o in outcome if isinstance(o, Exception)]
    assert failed, "the too-long id was stored"
    assert isinstance(outcome[1], Exception)
    stored_ids = {d["delivery_id"] for d in rows(rig, deliveries)}
    if isinstance(outcome[0], Exception):  # in the same batch: neither is there
        assert stored_ids == set() and rows(rig, jobs) == []
    else:  # the good one committed in a batch of its own, with its job
        assert stored_ids == {"fine"} and len(rows(rig, jobs)) == 1
