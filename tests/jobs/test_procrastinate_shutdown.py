"""The PostgreSQL worker's side loops stop even when a cancellation is lost (no server
needed: this is the shutdown of `ProcrastinateQueue.work`'s own tasks)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

from interlink.jobs._procrastinate import _stop_side_tasks
from interlink.jobs._procrastinate_worker import Runner


def _runner() -> Any:
    runner = SimpleNamespace(closing=asyncio.Event())
    runner._pause = Runner._pause.__get__(runner)
    return runner


def test_a_side_loop_that_swallows_its_cancellation_still_stops() -> None:
    """As when psycopg_pool loses a cancellation while handing over a connection."""

    async def go() -> list[int]:
        runner = _runner()
        turns: list[int] = []

        async def loop() -> None:
            while await runner._pause(0.05):
                try:
                    await asyncio.sleep(0.01)  # the loop's work
                except asyncio.CancelledError:
                    pass  # lost: the loop goes on
                turns.append(1)

        task = asyncio.create_task(loop(), name="side")
        await asyncio.sleep(0.2)
        await asyncio.wait_for(_stop_side_tasks(runner, [task]), 10)
        assert task.done()
        return turns

    assert asyncio.run(go())


def test_a_side_loop_that_will_not_stop_is_left_behind_with_an_error(caplog) -> None:
    async def go() -> None:
        runner = _runner()
        released = asyncio.Event()

        async def stubborn() -> None:  # ignores `closing` and every cancellation
            while not released.is_set():
                try:
                    await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                    pass

        task = asyncio.create_task(stubborn(), name="stubborn")
        with caplog.at_level(logging.ERROR, logger="interlink.jobs"):
            await asyncio.wait_for(_stop_side_tasks(runner, [task]), 15)
        assert not task.done()  # it returned anyway, after its bounded wait
        released.set()
        await task

    asyncio.run(go())
    assert "did not stop, left behind: stubborn" in caplog.text
