"""`/runs`: the history of pipeline runs, newest first, and one run with its counts."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request

from interlink.config import ACCOUNT_NAME
from interlink.store import COUNTERS, Store, metadata
from interlink.sync import split_key, state_key

from ._context import Context, known_query_only
from ._envelope import success
from ._errors import not_found
from ._models import MAX_ID, NAME_PATTERN, Envelope, Page, RunOut

__all__ = ["last_run", "router", "run_out"]

router = APIRouter(tags=["runs"], dependencies=[Depends(known_query_only)])


def run_out(row: dict[str, Any]) -> dict[str, Any]:
    """A row of interlink_runs as the API shows it (counts nested, no owner process)."""
    pipeline, account = split_key(row["pipeline"])
    return {
        "id": row["id"],
        "pipeline": pipeline,
        "account": account,
        "status": row["status"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "full_refresh": bool(row["full_refresh"]),
        "dry_run": bool(row["dry_run"]),
        "resumed": bool(row["resumed"]),
        "counts": {name: int(row[name] or 0) for name in COUNTERS},
        "errors": list(row["errors"] or []),
        "message": row["message"],
    }


def last_run(store: Store, pipeline: str) -> dict[str, Any] | None:
    found = store.runs(pipeline, limit=1)
    return run_out(found[0]) if found else None


def _page(
    store: Store, pipeline: str | None, account: str | None, limit: int, before: int | None
) -> list[Any]:
    runs = metadata.tables["interlink_runs"]
    query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
    if pipeline is not None and account is not None:
        query = query.where(runs.c.pipeline == state_key(pipeline, account))
    elif pipeline is not None:
        # A pipeline's runs for every account: NAME and NAME@ACCOUNT.
        query = query.where(
            sa.or_(
                runs.c.pipeline == pipeline,
                runs.c.pipeline.startswith(f"{pipeline}@", autoescape=True),
            )
        )
    elif account is not None:
        query = query.where(runs.c.pipeline.endswith(f"@{account}", autoescape=True))
    if before is not None:
        query = query.where(runs.c.id < before)
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


@router.get("/runs", response_model=Page[RunOut], summary="Pipeline runs, newest first")
def list_runs(
    request: Request,
    ctx: Context,
    pipeline: Annotated[str | None, Query(max_length=200, pattern=NAME_PATTERN)] = None,
    account: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=ACCOUNT_NAME.pattern,
            description="Only the runs for this connected account.",
        ),
    ] = None,
    limit: Annotated[int, Query(description="Page size, clamped to 1..100.")] = 20,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only runs with a smaller id.")
    ] = None,
) -> dict[str, object]:
    size = max(1, min(100, limit))
    found = _page(ctx.store, pipeline, account, size + 1, before)
    page = found[:size]
    return success(
        request.scope,
        [run_out(row) for row in page],
        limit=size,
        next_before=page[-1]["id"] if len(found) > size and page else None,
    )


@router.get("/runs/{run_id}", response_model=Envelope[RunOut], summary="One run")
def get_run(
    request: Request, ctx: Context, run_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> dict[str, object]:
    row = ctx.store.run(run_id)
    if row is None:
        raise not_found(f"Run {run_id}")
    return success(request.scope, run_out(row))
