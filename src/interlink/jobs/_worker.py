"""`run_worker`: a queue's worker loop plus the scheduler, as `interlink worker` and
`interlink serve` run them."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from interlink.config import InterlinkConfig
from interlink.store import Store

from ._queue import JobKinds, Queue, WorkerStats
from ._schedules import Scheduler

__all__ = ["run_worker"]

log = logging.getLogger("interlink.jobs")
_TICK = 1.0


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
) -> WorkerStats:
    """Run jobs (and enqueue scheduled pipelines) until `stop` is set.

    With `burst`, return once no job is ready. On stop, running pipeline jobs end at their
    next batch and go back to the queue, to resume from their checkpoint.
    """
    stop = stop or asyncio.Event()
    scheduler = Scheduler(config, store, queue)
    ticking: asyncio.Task[None] | None = None
    if schedules and scheduler.crons:
        ticking = asyncio.create_task(_tick_forever(scheduler, stop))
    try:
        return await queue.work(
            kinds or JobKinds.default(),
            concurrency=concurrency or config.jobs.concurrency,
            stop=stop,
            burst=burst,
        )
    finally:
        if ticking is not None:
            ticking.cancel()
            with suppress(asyncio.CancelledError):
                await ticking


async def _tick_forever(scheduler: Scheduler, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            scheduler.tick()
        except Exception:  # a database hiccup must not stop the worker; try next tick
            log.exception("the scheduler failed to tick")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _TICK)
