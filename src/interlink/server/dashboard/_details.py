"""One thing at a time: a run, a job (following itself while it runs), a webhook delivery
and a conflict.

```
GET /runs/{id}          counts, errors, message, the records that failed
GET /jobs/{id}          status, attempts, progress, result; refreshes while queued/running
GET /jobs/{id}/state    the same in a small JSON object, polled by static/dashboard.js
GET /deliveries/{id}    headers (credentials masked), the payload pretty-printed, attempts
GET /conflicts/{id}     both sides field by field
```
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from interlink.server._context import Context
from interlink.server._models import MAX_ID
from interlink.server._runs import run_out
from interlink.store import COUNTERS, conflict, get_delivery
from interlink.webhooks import delivery_details

from ._errors import Refused
from ._render import page, pretty_json
from ._session import SignedIn
from ._viewer import Viewer

__all__ = ["job_counts", "router"]

router = APIRouter(include_in_schema=False)

RECORD_ERRORS_SHOWN = 50


def _missing(what: str, viewer: Viewer) -> Refused:
    return Refused(404, "Not found", f"{what} does not exist (any more).", viewer=viewer)


def _known(number: int, what: str, viewer: Viewer) -> int:
    if not 1 <= number <= MAX_ID:
        raise _missing(what, viewer)
    return number


@router.get("/runs/{run_id:int}")
def run_page(request: Request, ctx: Context, viewer: SignedIn, run_id: int) -> Response:
    row = ctx.store.run(_known(run_id, f"Run {run_id}", viewer))
    if row is None:
        raise _missing(f"Run {run_id}", viewer)
    failed = ctx.store.record_errors(run_id)
    return page(
        request,
        "run.html",
        title=f"Run {run_id}",
        viewer=viewer,
        run=run_out(row),
        counters=COUNTERS,
        record_errors=failed[:RECORD_ERRORS_SHOWN],
        more_errors=max(0, len(failed) - RECORD_ERRORS_SHOWN),
    )


def job_counts(job: dict[str, Any]) -> dict[str, int] | None:
    """The run's counts a job shows: its result's when it ended, else its progress's."""
    for part in (job.get("result"), job.get("progress")):
        if isinstance(part, dict) and isinstance(part.get("counts"), dict):
            return {name: int(part["counts"].get(name) or 0) for name in COUNTERS}
    return None


def _job(ctx: Context, job_id: int, viewer: Viewer) -> dict[str, Any]:
    job = ctx.queue.get(_known(job_id, f"Job {job_id}", viewer))
    if job is None:
        raise _missing(f"Job {job_id}", viewer)
    return job.to_dict()


@router.get("/jobs/{job_id:int}")
def job_page(request: Request, ctx: Context, viewer: SignedIn, job_id: int) -> Response:
    job = _job(ctx, job_id, viewer)
    done = job["status"] in ("completed", "failed", "cancelled")
    result = job["result"] if isinstance(job["result"], dict) else {}
    return page(
        request,
        "job.html",
        title=f"Job {job_id}",
        viewer=viewer,
        live_url=None if done else f"/jobs/{job_id}/state",
        job=job,
        done=done,
        counts=job_counts(job),
        counters=COUNTERS,
        run_id=result.get("run_id") or (job["progress"] or {}).get("run_id"),
        run_status=_run_status(job, result),
        run_errors=result.get("errors") or [],
    )


def _run_status(job: dict[str, Any], result: dict[str, Any]) -> Any:
    """The status of the run a job made: a pipeline job's result's, a webhook job's
    `run_status` (its own `status` is the delivery's); None for other kinds."""
    if job.get("kind") == "pipeline.run":
        return result.get("status")
    return result.get("run_status")


@router.get("/jobs/{job_id:int}/state")
def job_state(ctx: Context, viewer: SignedIn, job_id: int) -> Response:
    job = _job(ctx, job_id, viewer)
    result = job["result"] if isinstance(job["result"], dict) else {}
    return JSONResponse(
        {
            "id": job["id"],
            "status": job["status"],
            "done": job["status"] in ("completed", "failed", "cancelled"),
            "attempts": job["attempts"],
            "run_status": _run_status(job, result),
            "counts": job_counts(job),
        }
    )


def _payload(shown: dict[str, Any]) -> tuple[str, str]:
    """The body to show and how: ("json", indented), ("text", as sent) or ("base64", ...)."""
    if shown.get("body") is None:
        return "base64", str(shown.get("body_base64") or "")
    text = str(shown["body"])
    try:
        return "json", pretty_json(json.loads(text))
    except ValueError:
        return "text", text


@router.get("/deliveries/{delivery_id:int}")
def delivery_page(request: Request, ctx: Context, viewer: SignedIn, delivery_id: int) -> Response:
    found = get_delivery(ctx.store.engine, _known(delivery_id, f"Delivery {delivery_id}", viewer))
    if found is None:
        raise _missing(f"Webhook delivery {delivery_id}", viewer)
    shown = delivery_details(found)
    kind, body = _payload(shown)
    return page(
        request,
        "delivery.html",
        title=f"Delivery {delivery_id}",
        viewer=viewer,
        delivery=shown,
        body_kind=kind,
        body=body,
        size=len(found.body or b""),
        replayable=shown["status"] != "processing",
    )


def _side(value: Any) -> str:
    if value is None:
        return "\u2014"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@router.get("/conflicts/{conflict_id:int}")
def conflict_page(request: Request, ctx: Context, viewer: SignedIn, conflict_id: int) -> Response:
    row = conflict(ctx.store.engine, _known(conflict_id, f"Conflict {conflict_id}", viewer))
    if row is None:
        raise _missing(f"Conflict {conflict_id}", viewer)
    source = row["source_record"] if isinstance(row["source_record"], dict) else {}
    target = row["target_record"] if isinstance(row["target_record"], dict) else {}
    fields = [
        {
            "name": name,
            "source": _side(source.get(name)),
            "target": _side(target.get(name)),
            "differs": source.get(name) != target.get(name),
        }
        for name in sorted({*source, *target})
    ]
    return page(
        request,
        "conflict.html",
        title=f"Conflict {conflict_id}",
        viewer=viewer,
        conflict=row,
        fields=fields,
    )
