"""Schedules: `pipelines.NAME.schedule` (cron, UTC) enqueues runs of the pipeline.

Every worker ticks the scheduler about once a second. A tick claims the pipeline's latest
due time with one conditional UPDATE of `interlink_schedules` (so of many workers exactly
one enqueues it) and enqueues the run in that same transaction. Ticks missed while no
worker ran are not stacked up: only the latest counts, and none is enqueued while a run
of the pipeline is still queued. A new or changed schedule starts counting from now.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import sqlalchemy as sa
from croniter import croniter

from interlink.config import InterlinkConfig
from interlink.store import Store, jobs, schedules

from ._model import Job, pipeline_job
from ._queue import Queue

__all__ = ["Scheduler", "latest_tick"]

log = logging.getLogger("interlink.jobs")


def latest_tick(cron: str, now: float) -> float:
    """The latest time at or before `now` at which `cron` fires (epoch seconds, UTC)."""
    return float(croniter(cron, now + 1e-6).get_prev(float))


class Scheduler:
    """Enqueues the scheduled pipelines of `config` when they are due."""

    def __init__(
        self,
        config: InterlinkConfig,
        store: Store,
        queue: Queue,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.queue = queue
        self.clock = clock
        self.crons = {
            name: pipeline.schedule
            for name, pipeline in config.pipelines.items()
            if pipeline.schedule
        }

    def tick(self, now: float | None = None) -> list[Job]:
        """Enqueue every pipeline whose schedule came due since its last tick."""
        now = self.clock() if now is None else now
        enqueued: list[Job] = []
        for name, cron in self.crons.items():
            job = self._tick_one(name, cron, latest_tick(cron, now))
            if job is not None:
                enqueued.append(job)
        return enqueued

    def _tick_one(self, name: str, cron: str, due: float) -> Job | None:
        with self.store.transaction() as conn:
            row = conn.execute(sa.select(schedules).where(schedules.c.pipeline == name)).first()
            if row is None or row.cron != cron:
                self._start_counting(conn, name, cron, due, exists=row is not None)
                return None
            if due <= row.last_tick:
                return None
            won = conn.execute(
                sa.update(schedules)
                .where(schedules.c.pipeline == name, schedules.c.last_tick == row.last_tick)
                .values(last_tick=due)
            ).rowcount
            if not won:
                return None  # another worker took this tick
            waiting = conn.execute(
                sa.select(jobs.c.id)
                .where(jobs.c.pipeline == name, jobs.c.status == "queued")
                .limit(1)
            ).first()
            if waiting is not None:
                log.info("schedule of %s: a run is still queued (job %s)", name, waiting.id)
                return None
            job = self.queue.enqueue(pipeline_job(name), conn=conn)
            conn.execute(
                sa.update(schedules).where(schedules.c.pipeline == name).values(last_job_id=job.id)
            )
        log.info("schedule of %s: enqueued job %s", name, job.id)
        return job

    def _start_counting(
        self, conn: sa.Connection, name: str, cron: str, due: float, *, exists: bool
    ) -> None:
        if exists:
            conn.execute(
                sa.update(schedules)
                .where(schedules.c.pipeline == name)
                .values(cron=cron, last_tick=due)
            )
            return
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(schedules).values(pipeline=name, cron=cron, last_tick=due))
        except sa.exc.IntegrityError:
            pass  # another worker registered it at the same moment
