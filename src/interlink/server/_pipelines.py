"""`/pipelines`: what interlink.yaml defines, with each pipeline's last run."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from interlink.config import PipelineConfig

from ._context import Context, known_query_only
from ._envelope import success
from ._models import Envelope, PipelineOut
from ._runs import last_run

__all__ = ["destination_name", "router"]

router = APIRouter(tags=["pipelines"], dependencies=[Depends(known_query_only)])


def destination_name(pipeline: PipelineConfig) -> str:
    target = pipeline.destination
    return f"sql:{target.sql}" if target.sql is not None else str(target.resource)


@router.get("/pipelines", response_model=Envelope[list[PipelineOut]], summary="Pipelines")
def list_pipelines(request: Request, ctx: Context) -> dict[str, object]:
    data = [
        {
            "name": name,
            "source": pipeline.source,
            "destination": destination_name(pipeline),
            "write": pipeline.write,
            "schedule": pipeline.schedule,
            "last_run": last_run(ctx.store, name),
        }
        for name, pipeline in ctx.config.pipelines.items()
    ]
    return success(request.scope, data)
