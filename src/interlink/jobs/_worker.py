"""`run_worker`: a queue's worker loop plus the scheduler and the chores, as `interlink
worker` and `interlink serve` run them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import suppress

from interlink.config import InterlinkConfig
from interlink.store import Store

from ._queue import JobKinds, Queue, WorkerStats
from ._schedules import Scheduler

__all__ = ["CHORE_EVERY", "run_worker"]

log = logging.getLogger("interlink.jobs")
_TICK = 1.0
CHORE_EVERY = 30.0
"""Seconds between two rounds of a worker's chores."""


async def run_worker(
    config: InterlinkConfig,
    store: Store,
    queue: Queue,
    *,
    kinds: JobKinds | None = None,
    concurrency: int | None = None,
    stop: asyncio.Event | None = None,
    burst: bool = False,
    schedules: bool = True,
    chores: Sequence[Callable[[], object]] = (),
) -> WorkerStats:
    """Run jobs (and enqueue scheduled pipelines) until `stop` is set.

    With `burst`, return once no job is ready. On stop, running pipeline jobs end at their
    next batch and go back to the queue, to resume from their checkpoint. `chores` are
    called in a thread every CHORE_EVERY seconds (not in a burst), a failing one logged
    (the webhook inbox's release of held deliveries, webhooks/_held.py).
    """
    stop = stop or asyncio.Event()
    scheduler = Scheduler(config, store, queue)
    ticking: asyncio.Task[None] | None = None
    if schedules and scheduler.crons:
        ticking = asyncio.create_task(_tick_forever(scheduler, stop))
    choring = None if burst or not chores else asyncio.create_task(_chores(chores, stop))
    try:
        return await queue.work(
            kinds or JobKinds.default(),
            concurrency=concurrency or config.jobs.concurrency,
            stop=stop,
            burst=burst,
        )
    finally:
        for task in (ticking, choring):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task


async def _tick_forever(scheduler: Scheduler, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            scheduler.tick()
        except Exception:  # a database hiccup must not stop the worker; try next tick
            log.exception("the scheduler failed to tick")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _TICK)


async def _chores(chores: Sequence[Callable[[], object]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CHORE_EVERY)
        if stop.is_set():
            return
        for chore in chores:
            try:
                await asyncio.to_thread(chore)
            except Exception:  # a database hiccup must not stop the worker; next round
                log.exception("a worker's chore failed: %s", getattr(chore, "__name__", chore))
