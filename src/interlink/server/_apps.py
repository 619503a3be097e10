"""`/apps/{name}/status`: one connection of interlink.yaml and what interlink does with it."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Request

from interlink.http import Redactor
from interlink.store import jobs

from ._context import Context, ServerContext, known_query_only
from ._envelope import success
from ._errors import not_found
from ._models import AppStatus, Envelope
from ._runs import last_run

__all__ = ["router"]

router = APIRouter(tags=["apps"], dependencies=[Depends(known_query_only)])


def _active_jobs(ctx: ServerContext, pipelines: list[str]) -> dict[str, int]:
    counts = {"queued": 0, "running": 0}
    if not pipelines:
        return counts
    query = (
        sa.select(jobs.c.status, sa.func.count())
        .where(jobs.c.pipeline.in_(pipelines), jobs.c.status.in_(tuple(counts)))
        .group_by(jobs.c.status)
    )
    with ctx.store.engine.connect() as conn:
        for status, count in conn.execute(query):
            counts[str(status)] = int(count)
    return counts


@router.get(
    "/apps/{name}/status",
    response_model=Envelope[AppStatus],
    summary="One app (a connection) and its pipelines",
)
def app_status(
    request: Request,
    ctx: Context,
    name: Annotated[str, Path(description="A connection's name in interlink.yaml.")],
) -> dict[str, object]:
    connection = ctx.config.connections.get(name)
    if connection is None:
        raise not_found(f"App {name!r}")
    pipelines: list[dict[str, Any]] = []
    for pipeline_name, pipeline in ctx.config.pipelines.items():
        target = pipeline.destination.resource or ""
        if pipeline.source.partition(".")[0] == name:
            role = "source"
        elif target.partition(".")[0] == name:
            role = "destination"
        else:
            continue
        pipelines.append(
            {"name": pipeline_name, "role": role, "last_run": last_run(ctx.store, pipeline_name)}
        )
    data = {
        "name": name,
        "base_url": Redactor().url(connection.base_url),
        "auth": connection.auth.type,
        "resources": [f"{name}.{r}" for r in ctx.config.resources.get(name, {})],
        "pipelines": pipelines,
        "jobs": _active_jobs(ctx, [p["name"] for p in pipelines]),
    }
    return success(request.scope, data)
