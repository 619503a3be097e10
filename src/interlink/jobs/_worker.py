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
    ended = asyncio.Event()
    choring = None
    if chores and not burst:
        choring = asyncio.create_task(_chores(chores, stop, ended))
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
        if choring is not None:
            # A chore under way runs in a thread nothing can stop: it ends before the
            # worker does, so the store and queue its caller closes next are not in use.
            ended.set()
            await choring


async def _tick_forever(scheduler: Scheduler, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            scheduler.tick()
        except Exception:  # a database hiccup must not stop the worker; try next tick
            log.exception("the scheduler failed to tick")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _TICK)


async def _chores(
    chores: Sequence[Callable[[], object]], stop: asyncio.Event, ended: asyncio.Event
) -> None:
    """Every CHORE_EVERY seconds, each chore in a thread, until `stop` or `ended`."""
    while True:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(ended.wait())]
        await asyncio.wait(waits, timeout=CHORE_EVERY, return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            waiting.cancel()
        if stop.is_set() or ended.is_set():
            return
        for chore in chores:
            try:
                await asyncio.to_thread(chore)
            except Exception:  # a database hiccup must not stop the worker; next round
                log.exception("a worker's chore failed: %s", getattr(chore, "__name__", chore))
