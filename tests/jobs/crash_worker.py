"""A worker process for the crash tests: `python tests/jobs/crash_worker.py DBURL [options]`.

It runs the queue of DBURL (SQLite or PostgreSQL, whichever `open_queue` picks) with three
test-only kinds and stops cleanly on SIGTERM; the tests SIGKILL it instead.

- `crash.effect` records each execution (`crash_executions`, committed when it starts),
  sleeps `args["sleep"]` seconds, then writes its effect idempotently, keyed by job id
  (`crash_effects`; a re-run finds it and only marks itself a replay) and closes its
  execution row, both in one transaction. The effect table has no unique key on purpose:
  two executions of one job at the same time would both write it.
- `crash.poison` always raises.
- `crash.hang` runs until asked to stop (for killing a worker with a job in hand).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from typing import Any

import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.errors import JobCancelledError
from interlink.jobs import JobContext, JobKinds, open_queue
from interlink.store import Store

TABLES = (
    "CREATE TABLE IF NOT EXISTS crash_executions (job_id INTEGER NOT NULL, pid INTEGER NOT NULL,"
    " started_at FLOAT NOT NULL, ended_at FLOAT, replay BOOLEAN)",
    "CREATE TABLE IF NOT EXISTS crash_effects (job_id INTEGER NOT NULL, pid INTEGER NOT NULL)",
)


def create_tables(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for statement in TABLES:
            conn.exec_driver_sql(statement)


def settings(url: str, *, lease: float, max_attempts: int = 5) -> InterlinkConfig:
    return InterlinkConfig.model_validate(
        {
            "database": url,
            "jobs": {
                "lease": lease,
                "max_attempts": max_attempts,
                "retry_delay": 0.05,
                "retry_max_delay": 0.2,
                "poll_interval": 0.1,
            },
        }
    )


def _store(context: JobContext) -> Store:
    store = context.services["store"]
    assert isinstance(store, Store)
    return store


async def effect(context: JobContext) -> dict[str, Any]:
    job_id, pid = context.job.id, os.getpid()
    engine = _store(context).engine

    def begin() -> None:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO crash_executions (job_id, pid, started_at) VALUES (:j, :p, :t)"
                ),
                {"j": job_id, "p": pid, "t": time.time()},
            )

    def finish() -> None:
        with engine.begin() as conn:
            written = conn.execute(
                sa.text(
                    "INSERT INTO crash_effects (job_id, pid) SELECT :j, :p WHERE NOT EXISTS "
                    "(SELECT 1 FROM crash_effects WHERE job_id = :j)"
                ),
                {"j": job_id, "p": pid},
            ).rowcount
            conn.execute(
                sa.text(
                    "UPDATE crash_executions SET ended_at = :t, replay = :r "
                    "WHERE job_id = :j AND pid = :p AND ended_at IS NULL"
                ),
                {"j": job_id, "p": pid, "t": time.time(), "r": written == 0},
            )

    # In threads, so that the worker's other jobs and its heartbeat go on meanwhile.
    await asyncio.to_thread(begin)
    await asyncio.sleep(float(context.job.args.get("sleep", 0.005)))
    await asyncio.to_thread(finish)
    return {"pid": pid}


async def poison(context: JobContext) -> None:
    raise RuntimeError(f"poison (attempt {context.job.attempts})")


async def hang(context: JobContext) -> None:
    while not context.should_stop():
        await asyncio.sleep(0.02)
    raise JobCancelledError("stopped", job_id=context.job.id)


def kinds() -> JobKinds:
    registry = JobKinds.default()
    registry.register("crash.effect", effect)
    registry.register("crash.poison", poison)
    registry.register("crash.hang", hang)
    return registry


async def main(url: str, *, concurrency: int, lease: float, max_attempts: int) -> None:
    config = settings(url, lease=lease, max_attempts=max_attempts)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    try:
        await queue.work(kinds(), concurrency=concurrency, stop=stop)
    finally:
        queue.close()
        store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--lease", type=float, default=1.5)
    parser.add_argument("--max-attempts", type=int, default=5)
    options = parser.parse_args()
    asyncio.run(
        main(
            options.url,
            concurrency=options.concurrency,
            lease=options.lease,
            max_attempts=options.max_attempts,
        )
    )
