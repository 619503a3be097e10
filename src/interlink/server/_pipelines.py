"""`/pipelines`: what interlink.yaml defines, with each pipeline's last run."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from interlink.config import PipelineConfig
from interlink.store import Store, count_outstanding
from interlink.sync import split_key

from ._context import Context, known_query_only
from ._envelope import success
from ._models import Envelope, PipelineOut
from ._runs import last_run

__all__ = ["destination_name", "failed_records", "router"]

router = APIRouter(tags=["pipelines"], dependencies=[Depends(known_query_only)])


def destination_name(pipeline: PipelineConfig) -> str:
    target = pipeline.destination
    return f"sql:{target.sql}" if target.sql is not None else str(target.resource)


def failed_records(store: Store) -> dict[str, int]:
    """How many failed records each pipeline still owes its destination (its accounts'
    summed), by pipeline name; one query."""
    with store.read() as conn:
        owed = count_outstanding(conn)
    counts: dict[str, int] = {}
    for key, count in owed.items():
        name, _ = split_key(key)
        counts[name] = counts.get(name, 0) + count
    return counts


@router.get("/pipelines", response_model=Envelope[list[PipelineOut]], summary="Pipelines")
def list_pipelines(request: Request, ctx: Context) -> dict[str, object]:
    owed = failed_records(ctx.store)
    data = [
        {
            "name": name,
            "source": pipeline.source,
            "destination": destination_name(pipeline),
            "write": pipeline.write,
            "schedule": pipeline.schedule,
            "last_run": last_run(ctx.store, name),
            "failed_records": owed.get(name, 0),
        }
        for name, pipeline in ctx.config.pipelines.items()
    ]
    return success(request.scope, data)
