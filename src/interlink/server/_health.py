"""`/health`: no key needed; is the database reachable, how full is the queue, which version."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request

from interlink._version import __version__

from ._context import Context, known_query_only
from ._envelope import success
from ._errors import ApiProblem
from ._models import Envelope, Health

__all__ = ["router"]

router = APIRouter(tags=["health"], dependencies=[Depends(known_query_only)])
log = logging.getLogger("interlink.server")


@router.get(
    "/health",
    response_model=Envelope[Health],
    summary="Liveness and readiness (no API key needed)",
    description="503 SERVICE_UNAVAILABLE when the database cannot be reached.",
)
def health(request: Request, ctx: Context) -> dict[str, object]:
    try:
        with ctx.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        counts = ctx.queue.counts()
    except Exception:
        log.exception("health check: the database is unreachable")
        raise ApiProblem(
            503,
            "The database is unreachable.",
            details=[{"field": "database", "issue": "unreachable"}],
        ) from None
    data = {
        "status": "ok",
        "version": __version__,
        "database": {"backend": ctx.store.engine.dialect.name, "reachable": True},
        "queue": counts,
        "worker": ctx.worker_state,
    }
    return success(request.scope, data)
