"""A worker's chores (`run_worker(chores=...)`; the release of held webhook deliveries):
called in a thread every CHORE_EVERY seconds while the worker runs, never in a burst, a
failing one logged and tried again next round, and one under way when the worker stops
waited for: the worker's caller closes the store and queue right after it returns."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

import interlink.jobs._worker as worker_module
from interlink.config import InterlinkConfig
from interlink.jobs import JobKinds, open_queue, run_worker
from interlink.store import Store


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(worker_module, "CHORE_EVERY", 0.05)
    config = InterlinkConfig.model_validate(
        {"database": f"sqlite:///{tmp_path / 'w.db'}", "jobs": {"poll_interval": 0.05}}
    )
    store = Store.open(config.database)
    queue = open_queue(config, store)
    yield config, store, queue
    queue.close()
    store.close()


def test_chores_run_each_round_and_one_failing_is_logged_and_tried_again(
    rig, caplog: pytest.LogCaptureFixture
) -> None:
    config, store, queue = rig
    calls: list[str] = []

    def fails_first() -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise RuntimeError("the database went away")

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_worker(
                config, store, queue, kinds=JobKinds.default(), stop=stop, chores=[fails_first]
            )
        )
        deadline = time.monotonic() + 10
        while len(calls) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await task

    caplog.set_level(logging.ERROR, logger="interlink.jobs")
    asyncio.run(run())
    assert len(calls) >= 3, "rounds went on after the failure"
    assert all(name != threading.main_thread().name for name in calls), "in a thread"
    [failed] = [r for r in caplog.records if "chore failed" in r.getMessage()]
    assert "fails_first" in failed.getMessage()


def test_a_burst_runs_no_chore(rig) -> None:
    config, store, queue = rig
    calls: list[int] = []
    asyncio.run(
        run_worker(
            config,
            store,
            queue,
            kinds=JobKinds.default(),
            burst=True,
            chores=[lambda: calls.append(1)],
        )
    )
    assert calls == []


def test_a_worker_stopping_waits_for_the_chore_under_way(rig) -> None:
    config, store, queue = rig
    started = threading.Event()
    ended: list[float] = []

    def slow() -> None:
        started.set()
        time.sleep(0.5)
        ended.append(time.monotonic())

    async def run() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_worker(config, store, queue, kinds=JobKinds.default(), stop=stop, chores=[slow])
        )
        await asyncio.to_thread(started.wait, 10)
        stop.set()
        await task
        return time.monotonic()

    returned = asyncio.run(run())
    assert ended and ended[0] <= returned, "the chore ended before the worker returned"
