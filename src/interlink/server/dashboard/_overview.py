"""`GET /`: everything at a glance: connections, pipelines, the job queue, webhook
deliveries and open conflicts, with the buttons a `write` key may press."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from starlette.responses import Response

from interlink.config import InterlinkConfig
from interlink.errors import ConfigError
from interlink.jobs import JobFilter
from interlink.oauth import connect_settings, describe_connections, start_url
from interlink.server._context import Context, ServerContext
from interlink.server._pipelines import destination_name, failed_records
from interlink.server._runs import last_run
from interlink.store import DeliveryFilter, delivery_counts, list_deliveries, metadata

from ._render import page
from ._session import SignedIn

__all__ = ["connectable", "router"]

router = APIRouter(include_in_schema=False)

LATEST = 10
"""How many jobs and deliveries the overview lists."""
OPEN_CONFLICTS = 20


def connectable(config: InterlinkConfig, connection: str) -> bool:
    """Whether an account can be connected to `connection` from a browser here: an
    `oauth2` connection with an authorize URL whose redirect URI is this server's
    `/connect/{connection}/callback`."""
    try:
        auth = connect_settings(config, connection)
    except ConfigError:
        return False
    return start_url(auth, connection) is not None


def _pipelines(ctx: ServerContext) -> list[dict[str, Any]]:
    owed = failed_records(ctx.store)
    return [
        {
            "name": name,
            "source": pipeline.source,
            "destination": destination_name(pipeline),
            "schedule": pipeline.schedule,
            "account": pipeline.account,
            "last_run": last_run(ctx.store, name),
            "failed_records": owed.get(name, 0),
        }
        for name, pipeline in ctx.config.pipelines.items()
    ]


def _open_conflicts(ctx: ServerContext) -> tuple[int, list[dict[str, Any]]]:
    table = metadata.tables["interlink_conflicts"]
    is_open = table.c.status == "open"
    with ctx.store.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).where(is_open)).scalar_one()
        rows = conn.execute(
            sa.select(table).where(is_open).order_by(table.c.id).limit(OPEN_CONFLICTS)
        )
        return int(count), [dict(row._mapping) for row in rows]


@router.get("/")
def overview(request: Request, ctx: Context, viewer: SignedIn) -> Response:
    connections = describe_connections(ctx.config, ctx.store.engine)
    for connection in connections:
        connection["connectable"] = connectable(ctx.config, connection["name"])
    conflict_count, conflicts = _open_conflicts(ctx)
    return page(
        request,
        "overview.html",
        title="Overview",
        viewer=viewer,
        nav="overview",
        worker=ctx.worker_state,
        connections=connections,
        pipelines=_pipelines(ctx),
        job_counts=ctx.queue.counts(),
        jobs=[job.to_dict() for job in ctx.queue.list(JobFilter(limit=LATEST))],
        delivery_counts=delivery_counts(ctx.store.engine),
        deliveries=[
            d.to_dict() for d in list_deliveries(ctx.store.engine, DeliveryFilter(limit=LATEST))
        ],
        conflict_count=conflict_count,
        conflicts=conflicts,
        metrics=sorted(ctx.config.metrics),
    )
