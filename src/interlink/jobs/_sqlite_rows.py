"""Rows of `interlink_jobs` as the SQLite queue and its worker read and write them."""

from __future__ import annotations

from typing import Any

import orjson

from ._model import Job, JobSpec

__all__ = ["COLUMNS", "dumps", "job_from_row", "loads", "new_job"]

COLUMNS = (
    "id, kind, args, status, priority, attempts, max_attempts, lock, pipeline, run_at, "
    "created_at, started_at, finished_at, worker, cancel_requested, progress, result, error"
)


def loads(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


def dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()


def job_from_row(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0],
        kind=row[1],
        args=loads(row[2]) or {},
        status=row[3],
        priority=row[4],
        attempts=row[5],
        max_attempts=row[6],
        lock=row[7],
        pipeline=row[8],
        run_at=row[9],
        created_at=row[10],
        started_at=row[11],
        finished_at=row[12],
        worker=row[13],
        cancel_requested=bool(row[14]),
        progress=loads(row[15]),
        result=loads(row[16]),
        error=row[17],
    )


def new_job(job_id: int, spec: JobSpec, values: dict[str, Any]) -> Job:
    return Job(
        id=job_id,
        kind=spec.kind,
        args=dict(spec.args),
        status="queued",
        priority=spec.priority,
        attempts=0,
        max_attempts=values["max_attempts"],
        lock=spec.lock,
        pipeline=spec.pipeline,
        run_at=values["run_at"],
        created_at=values["created_at"],
    )
