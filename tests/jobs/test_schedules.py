"""Schedules enqueue each due tick once, across workers, without stacking missed ticks."""

from __future__ import annotations

import calendar
import time
from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.jobs import JobFilter, Scheduler, latest_tick, open_queue
from interlink.store import Store

T0 = calendar.timegm((2026, 12, 1, 10, 7, 30, 0, 0, 0))  # 10:07:30 UTC


def make(tmp_path, schedule: str = "*/15 * * * *") -> tuple[InterlinkConfig, Store, Any]:
    config = InterlinkConfig.model_validate(
        {
            "database": f"sqlite:///{tmp_path / 's.db'}",
            "connections": {"shop": {"base_url": "http://127.0.0.1:9"}},
            "resources": {"shop": {"customers": {"path": "/customers"}}},
            "pipelines": {
                "every15": {
                    "source": "shop.customers",
                    "destination": {"sql": "customers"},
                    "schedule": schedule,
                },
                "manual": {"source": "shop.customers", "destination": {"sql": "other"}},
            },
        }
    )
    store = Store.open(config.database)
    return config, store, open_queue(config, store)


def test_latest_tick_is_the_last_firing_at_or_before_now() -> None:
    assert latest_tick("*/15 * * * *", T0) == T0 - 7 * 60 - 30
    assert latest_tick("*/15 * * * *", T0 - 7 * 60 - 30) == T0 - 7 * 60 - 30
    assert latest_tick("@hourly", T0) == T0 - 7 * 60 - 30
    assert latest_tick("* * * * * */10", T0 + 5) == T0


def test_a_new_schedule_starts_counting_from_now(tmp_path) -> None:
    config, store, queue = make(tmp_path)
    scheduler = Scheduler(config, store, queue)
    assert list(scheduler.crons) == ["every15"]
    assert scheduler.tick(T0) == []  # registers; the 10:00 tick is in the past
    assert scheduler.tick(T0 + 60) == []
    [job] = scheduler.tick(T0 + 8 * 60)  # 10:15:30: the 10:15 tick is due
    assert (job.kind, job.pipeline, job.lock) == ("pipeline.run", "every15", "pipeline:every15")
    assert scheduler.tick(T0 + 9 * 60) == []


def test_of_two_workers_exactly_one_enqueues_a_tick(tmp_path) -> None:
    config, store, queue = make(tmp_path)
    first, second = Scheduler(config, store, queue), Scheduler(config, store, queue)
    first.tick(T0)
    second.tick(T0)
    due = T0 + 8 * 60
    assert len(first.tick(due)) + len(second.tick(due)) == 1
    assert len(queue.list(JobFilter(pipeline="every15"))) == 1


def test_missed_ticks_are_not_stacked_up(tmp_path) -> None:
    config, store, queue = make(tmp_path)
    scheduler = Scheduler(config, store, queue)
    scheduler.tick(T0)
    # nothing ran for five hours: one run, not twenty
    [job] = scheduler.tick(T0 + 5 * 3600)
    # and while that run is still queued, the next tick adds none
    assert scheduler.tick(T0 + 5 * 3600 + 15 * 60) == []
    queue.cancel(job.id)
    assert len(scheduler.tick(T0 + 5 * 3600 + 30 * 60)) == 1


def test_a_changed_schedule_starts_counting_again(tmp_path) -> None:
    config, store, queue = make(tmp_path)
    Scheduler(config, store, queue).tick(T0)
    changed, _, _ = make(tmp_path, schedule="0 * * * *")
    scheduler = Scheduler(changed, store, queue)
    assert scheduler.tick(T0 + 60) == []  # re-registered at 10:00
    assert len(scheduler.tick(T0 + 3600)) == 1  # 11:00


@pytest.mark.parametrize("bad", ["*/15 * * *", "61 * * * *", "@often", "* * 32 * *"])
def test_a_bad_cron_is_a_config_error(tmp_path, bad: str) -> None:
    from interlink.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="cron"):
        make(tmp_path, schedule=bad)


def test_the_worker_ticks_the_scheduler(tmp_path) -> None:
    import asyncio

    from interlink.jobs import JobKinds, run_worker

    config, store, queue = make(tmp_path, schedule="* * * * * */1")  # every second

    async def go() -> None:
        stop = asyncio.Event()
        kinds = JobKinds({"noop": JobKinds.default()["noop"]})  # pipeline.run unknown here
        task = asyncio.create_task(run_worker(config, store, queue, kinds=kinds, stop=stop))
        deadline = time.monotonic() + 5
        while not queue.list(JobFilter(pipeline="every15")) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(go())
    jobs = queue.list(JobFilter(pipeline="every15"))
    assert jobs, "the worker enqueued no scheduled run within 5 s"
