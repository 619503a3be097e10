"""Schedules: `pipelines.NAME.schedule` (cron, UTC) enqueues runs of the pipeline.

An expression has 5 fields, or 6 with seconds LAST (`*/15 * * * * 30`), as the config
accepts them (`interlink.config._cron`); croniter is told so, not left to its default.

Every worker ticks the scheduler about once a second. A tick claims the pipeline's latest
due time with one conditional UPDATE of `interlink_schedules` (so of many workers exactly
one enqueues it) and enqueues the run in that same transaction. Ticks missed while no
worker ran are not stacked up: only the latest counts, and none is enqueued while a run
of the pipeline is still queued. A new or changed schedule starts counting from now.

A pipeline whose source or destination connection is switched off (`interlink connections
disable`; for a pipeline with an `account:`, that account too) is not enqueued: its due
tick is taken and passed over, with one INFO line per tick naming what was skipped, and
the first tick after the connection is switched on again enqueues as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import sqlalchemy as sa
from croniter import croniter

from interlink.config import InterlinkConfig
from interlink.store import Store, Switch, disabled, jobs, schedules

from ._model import Job, pipeline_job
from ._queue import Queue

__all__ = ["Scheduler", "latest_tick", "pipeline_connections"]

log = logging.getLogger("interlink.jobs")


def latest_tick(cron: str, now: float) -> float:
    """The latest time at or before `now` at which `cron` fires (epoch seconds, UTC)."""
    return float(croniter(cron, now + 1e-6, second_at_beginning=False).get_prev(float))


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
        self.uses = {name: pipeline_connections(config, name) for name in self.crons}
        """The (connection, account) pairs each scheduled pipeline runs through."""
        self._unusable: set[str] = set()
        """Pipelines whose schedule croniter cannot compute, already logged once."""

    def tick(self, now: float | None = None) -> list[Job]:
        """Enqueue every pipeline whose schedule came due since its last tick (unless a
        connection it runs through is switched off)."""
        now = self.clock() if now is None else now
        enqueued: list[Job] = []
        skipped: list[str] = []
        for name, cron in self.crons.items():
            try:
                due = latest_tick(cron, now)
            except ValueError as exc:
                # The config refuses such a schedule; should one get here all the same, it
                # must not keep the pipelines after it from being enqueued.
                if name not in self._unusable:
                    self._unusable.add(name)
                    log.error("schedule of %s: %r cannot be used: %s", name, cron, exc)
                continue
            job = self._tick_one(name, cron, due, skipped)
            if job is not None:
                enqueued.append(job)
        if skipped:
            log.info("schedules not enqueued, switched off: %s", "; ".join(skipped))
        return enqueued

    def _switched_off(self, conn: sa.Connection, name: str) -> Switch | None:
        for connection, account in self.uses.get(name, ()):
            found = disabled(conn, connection, account)
            if found is not None:
                return found
        return None

    def _tick_one(self, name: str, cron: str, due: float, skipped: list[str]) -> Job | None:
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
            off = self._switched_off(conn, name)
            if off is not None:
                # The tick is taken and passed over: switched on again, the pipeline
                # runs at its next tick, not at once for the ones it missed.
                skipped.append(f"{name} ({_owner(off)}{_because(off)})")
                return None
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


def pipeline_connections(config: InterlinkConfig, name: str) -> list[tuple[str, str]]:
    """The (connection, account) pairs pipeline `name` runs through: its source's and its
    destination resource's connections, with the pipeline's `account:` ('' for none, and
    for `"*"`, whose accounts are decided when it runs)."""
    pipeline = config.pipelines[name]
    account = pipeline.account if pipeline.account not in (None, "*") else ""
    owners = [pipeline.source.partition(".")[0]]
    if pipeline.destination.resource is not None:
        target = pipeline.destination.resource.partition(".")[0]
        if target not in owners:
            owners.append(target)
    return [(owner, account or "") for owner in owners]


def _owner(switch: Switch) -> str:
    if switch.account:
        return f"connection {switch.connection}, account {switch.account}"
    return f"connection {switch.connection}"


def _because(switch: Switch) -> str:
    return f": {switch.reason}" if switch.reason else ""
