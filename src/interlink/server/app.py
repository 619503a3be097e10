"""`create_app`: the jobs API under /api/v1 as one FastAPI application.

```python
app = create_app(config)                      # opens config.database and its queue
app = create_app(config, worker=True)         # and runs jobs in the same process
uvicorn.run(app)
```
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from interlink._version import __version__
from interlink.config import InterlinkConfig
from interlink.jobs import JobKinds, Queue, open_queue, run_worker
from interlink.oauth import ConnectFlows
from interlink.store import ApiKeyCache, Store
from interlink.webhooks import job_kinds, release_chore

from ._apps import router as apps_router
from ._auth import ApiKeyMiddleware
from ._connect import api_router as connect_router, pages_router as connect_pages
from ._connections import router as connections_router
from ._context import ServerContext
from ._envelope import API_PREFIX
from ._errors import install_error_handlers
from ._framing import FramingMiddleware
from ._head import HeadMiddleware
from ._health import router as health_router
from ._jobs import router as jobs_router
from ._metrics import router as metrics_router
from ._middleware import BodyLimitMiddleware, RequestIdMiddleware, UnhandledErrorMiddleware
from ._models import ErrorEnvelope, JobConfig
from ._pipelines import router as pipelines_router
from ._proxies import ClientAddressMiddleware, TrustedProxies
from ._ratelimit import Limiter, RouteLimits
from ._routes import RouteIndex
from ._runs import router as runs_router
from ._security import SecurityHeadersMiddleware
from ._webhook_deliveries import router as webhook_deliveries_router
from ._webhooks import WEBHOOK_PREFIX, WebhookReceiver
from .dashboard import mount_dashboard

__all__ = ["OPENAPI_URL", "PUBLIC_PATHS", "create_app"]

log = logging.getLogger("interlink.server")

OPENAPI_URL = f"{API_PREFIX}/openapi.json"
DOCS_URL = f"{API_PREFIX}/docs"
PUBLIC_PATHS = frozenset(
    {f"{API_PREFIX}/health", OPENAPI_URL, DOCS_URL, f"{DOCS_URL}/oauth2-redirect"}
)
"""Paths under /api/v1 that answer without an API key."""

_WORKER_STOP_TIMEOUT = 30.0


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorEnvelope, "description": description}


_COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("INVALID_REQUEST: malformed JSON or not JSON"),
    401: _error("UNAUTHORIZED: no API key, or an unknown or revoked one"),
    403: _error("FORBIDDEN: the key's scope does not allow this"),
    404: _error("NOT_FOUND"),
    413: _error("PAYLOAD_TOO_LARGE: the body is over server.max_body"),
    422: _error("VALIDATION_ERROR: per-field details"),
    429: _error("RATE_LIMITED: see Retry-After and RateLimit"),
    500: _error("INTERNAL_ERROR: quote the request id"),
}
_PUBLIC_ERRORS: dict[int | str, dict[str, Any]] = {
    422: _error("VALIDATION_ERROR"),
    500: _error("INTERNAL_ERROR"),
    503: _error("SERVICE_UNAVAILABLE: the database is unreachable"),
}


class InterlinkApp(FastAPI):
    """The API, with the webhook receiver in front of all of it: a delivery is verified,
    stored and answered without passing FastAPI's and Starlette's per-request work, the
    API key check, the rate limits or the per-answer wrappers it does not need
    (server/_webhooks.py). What the receiver does not take (the deliveries API, a framing
    problem) goes on to the API as any request."""

    receiver: Callable[[ASGIApp], ASGIApp] | None = None
    _front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.receiver is not None
            and scope["type"] == "http"
            and scope["path"].startswith(WEBHOOK_PREFIX)
        ):
            if self._front is None:
                self._front = self.receiver(self._api)
            await self._front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def _lifespan(context: ServerContext, *, owns_store: bool, owns_queue: bool) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        if context.worker:
            context.worker_task = asyncio.create_task(
                run_worker(
                    context.config,
                    context.store,
                    context.queue,
                    kinds=context.kinds or job_kinds(),
                    concurrency=context.concurrency,
                    stop=stop,
                    chores=[release_chore(context.config, context.store, context.queue)],
                ),
                name="interlink-worker",
            )
            context.worker_task.add_done_callback(_report_worker_end)
        try:
            yield
        finally:
            stop.set()
            task = context.worker_task
            if task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(task), _WORKER_STOP_TIMEOUT)
                except TimeoutError:
                    log.warning("the worker did not stop within %.0f s", _WORKER_STOP_TIMEOUT)
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
                except Exception:
                    pass  # already logged by _report_worker_end
            await context.aclose_inbox()
            if owns_queue:
                context.queue.close()
            if owns_store:
                context.store.close()

    return lifespan


def _report_worker_end(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the embedded worker stopped with an error", exc_info=task.exception())


def create_app(
    config: InterlinkConfig,
    *,
    store: Store | None = None,
    queue: Queue | None = None,
    worker: bool = False,
    concurrency: int | None = None,
    kinds: JobKinds | None = None,
    inbox_process: bool = False,
) -> FastAPI:
    """The API for `config`: on `store` (default: open `config.database`) and `queue`
    (default: the configured backend's). With `worker`, the app's lifespan also runs the
    job worker and the scheduler (`concurrency` jobs at a time, default `jobs.concurrency`)
    and stops them, letting running jobs reach a batch boundary, on shutdown. `kinds` are
    the job kinds that worker runs (default: `webhooks.job_kinds()`: the built-in kinds
    and `webhook.process`). With `inbox_process`, webhook deliveries are stored through a
    writer process of their own (`ProcessInbox`; `interlink serve` on a SQLite file)
    instead of a writer thread."""
    owns_store = store is None
    store = store or Store.open(config.database)
    owns_queue = queue is None
    try:
        queue = queue or open_queue(config, store)
    except BaseException:
        if owns_store:
            store.close()
        raise
    context = ServerContext(
        config,
        store,
        queue,
        worker=worker,
        concurrency=concurrency,
        kinds=kinds,
        inbox_process=inbox_process,
    )
    limits = RouteLimits(config.server.rate_limits)
    guarded = (
        jobs_router,
        pipelines_router,
        runs_router,
        apps_router,
        webhook_deliveries_router,
        connections_router,
        connect_router,
        metrics_router,
    )
    routes = RouteIndex(API_PREFIX, (*guarded, health_router))
    app = InterlinkApp(
        title="interlink",
        version=__version__,
        description=(
            "Run interlink pipelines as jobs. Every answer is a JSON envelope; send "
            "`Authorization: Bearer <api key>` (see `interlink apikeys create`)."
        ),
        openapi_url=OPENAPI_URL,
        docs_url=DOCS_URL,
        swagger_ui_oauth2_redirect_url=f"{DOCS_URL}/oauth2-redirect",
        redoc_url=None,
        lifespan=_lifespan(context, owns_store=owns_store, owns_queue=owns_queue),
        # No redirects: `/jobs/` is a 404, never a 307 to a Location built from `Host`.
        redirect_slashes=False,
        middleware=[
            Middleware(ClientAddressMiddleware, TrustedProxies(config.server.trusted_proxies)),
            Middleware(RequestIdMiddleware),
            Middleware(SecurityHeadersMiddleware),
            Middleware(UnhandledErrorMiddleware),
            Middleware(FramingMiddleware),
            Middleware(HeadMiddleware),
            Middleware(
                ApiKeyMiddleware,
                ApiKeyCache(store.engine),
                Limiter(store.engine),
                limits,
                routes,
                public=PUBLIC_PATHS,
            ),
            Middleware(BodyLimitMiddleware, config.server.max_body),
        ],
    )
    app.state.interlink = context
    app.state.connect_flows = ConnectFlows(config, store)
    proxies = TrustedProxies(config.server.trusted_proxies)
    app.receiver = lambda stack: WebhookReceiver(stack, config, context.inbox, proxies=proxies)
    for router in guarded:
        app.include_router(router, prefix=API_PREFIX, responses=_COMMON_ERRORS)
    app.include_router(health_router, prefix=API_PREFIX, responses=_PUBLIC_ERRORS)
    app.include_router(connect_pages)
    mount_dashboard(app)
    install_error_handlers(app, routes)
    _document(app, config)
    return app


def _document(app: FastAPI, config: InterlinkConfig) -> None:
    """Make the OpenAPI document this server's own: the bearer scheme on every route that
    needs a key, and the pipelines of its interlink.yaml as the values POST /jobs takes."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {})
        pipeline: dict[str, Any] = {
            "type": "string",
            "description": "The pipeline to run (one of this server's); required for pipeline.run.",
        }
        if config.pipelines:
            pipeline["enum"] = sorted(config.pipelines)
        create = components["schemas"]["JobCreate"]["properties"]
        create["pipeline"] = pipeline
        job_config = JobConfig.model_json_schema(ref_template="#/components/schemas/{model}")
        job_config["properties"]["pipeline"] = dict(pipeline)
        components["schemas"]["JobConfig"] = job_config
        create["config"] = {
            "$ref": "#/components/schemas/JobConfig",
            "description": create["config"].get("description", ""),
        }
        create["type"] = {
            "type": "string",
            "enum": ["pipeline", "noop"],
            "default": "pipeline",
            "description": create["type"].get("description", ""),
        }
        components.setdefault("securitySchemes", {})["apiKey"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An interlink API key: il_<prefix>_<secret>.",
        }
        for path, operations in schema.get("paths", {}).items():
            if path in PUBLIC_PATHS:
                continue
            for operation in operations.values():
                operation["security"] = [{"apiKey": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
