"""Keep a run's pipeline lock alive from a heartbeat, whatever its pages are doing.

A page that takes longer than the lock's lease (a slow API, a long retry wait) must not
let another run take the pipeline over while this one still writes. The keeper renews
the lock every third of the lease in a thread (database work stays off the event loop);
when a renewal finds the lock taken over, `lost` turns True and the runner stops. Every
batch is fenced as well (`Store.hold_lock` in its transaction), so a run that lost its
lock writes nothing more even between two heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from interlink.errors import PipelineLockedError
from interlink.store import LOCK_LEASE, Store

__all__ = ["LeaseKeeper", "take_lock_for"]

log = logging.getLogger("interlink.sync")


def take_lock_for(store: Store, key: str, holder: int, refusal: str) -> None:
    """Take pipeline `key`'s lock for `holder`, work that is not a run (forgetting
    bindings, resolving a conflict), for the lock's lease. While a run or other such work
    holds it: PipelineLockedError saying `refusal` ("its bindings cannot be changed"),
    "now", and what holds it."""
    try:
        store.take_lock(key, holder, lease=LOCK_LEASE)
    except PipelineLockedError as exc:
        reason = str(exc).removeprefix(f"pipeline {key}: ")
        raise PipelineLockedError(f"{refusal} now: {reason}", pipeline=key) from None


class LeaseKeeper:
    """Renews `run_id`'s lock on `pipeline` every `lease / 3` seconds while in use."""

    def __init__(self, store: Store, pipeline: str, run_id: int, *, lease: float) -> None:
        self.store = store
        self.pipeline = pipeline
        self.run_id = run_id
        self.lease = lease
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                held = await asyncio.to_thread(
                    self.store.heartbeat, self.pipeline, self.run_id, self.lease
                )
            except Exception as exc:  # the database is away: try again at the next beat
                if not failing:
                    log.warning("pipeline %s: could not renew its lock: %s", self.pipeline, exc)
                failing = True
                continue
            failing = False
            if not held:
                self.lost = True
                log.error(
                    "pipeline %s: run %s lost its lock to another run; stopping",
                    self.pipeline,
                    self.run_id,
                )
                return

    async def __aenter__(self) -> LeaseKeeper:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
