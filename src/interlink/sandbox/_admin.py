"""The sandbox's own bookkeeping: request counters and the `/_stats`, `/_reset` routes.

Tests read `/_stats` to check what a client really did to the "third party": how many
requests it sent, how many 429s and faults it got, how many records it created, changed
or deleted. `POST /_touch` (added by apps that keep records) is how a test makes a change
"on the third party's side" for incremental reads. `/_webhooks` (the shop's, see
`_webhooks`) is an admin path too.

Admin paths are matched on the path *inside* the app, so they keep working when an app is
mounted under a prefix (`/shop/_stats` in the suite).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._cache import PageCache
from ._responses import JSONResponse, error_response
from ._store import BaseRecordStore, now_timestamp

__all__ = [
    "ADMIN_PATHS",
    "SandboxStats",
    "StatsMiddleware",
    "admin_routes",
    "is_admin_path",
    "route_path",
    "touch_response",
]

# Admin paths are exempt from auth, rate limits, faults and the counters.
ADMIN_PATHS = frozenset({"/_stats", "/_reset", "/_touch", "/_webhooks", "/_consent", "/_clock"})


def route_path(scope: Scope) -> str:
    """The request path relative to the app, without the prefix of a `Mount`.

    Starlette keeps the full path in `scope["path"]` and the mount prefix in `root_path`.
    """
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        return path[len(root_path) :] or "/"
    return path


def is_admin_path(scope: Scope) -> bool:
    return route_path(scope) in ADMIN_PATHS


@dataclass
class SandboxStats:
    """Counters of what clients did to one sandbox app since it started or was reset."""

    requests: int = 0
    unauthorized: int = 0
    rate_limited: int = 0
    creates: int = 0
    updates: int = 0
    deletes: int = 0
    idempotent_replays: int = 0
    tokens_issued: int = 0
    windows_closed: int = 0
    """429 faults that closed a client's window (`FaultConfig.rate_limited_rate`)."""
    window_violations: int = 0
    """Requests a client sent inside a window a 429 had closed (after it came back)."""
    faults: dict[str, int] = field(default_factory=dict)
    paths: Counter[str] = field(default_factory=Counter)
    # Set by an app serving from a page cache; its counters are listed as "page_cache".
    page_cache: PageCache | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        found = {
            "requests": self.requests,
            "unauthorized": self.unauthorized,
            "rate_limited": self.rate_limited,
            "faults_injected": sum(self.faults.values()),
            "faults": dict(self.faults),
            "creates": self.creates,
            "updates": self.updates,
            "deletes": self.deletes,
            "idempotent_replays": self.idempotent_replays,
            "tokens_issued": self.tokens_issued,
            "windows_closed": self.windows_closed,
            "window_violations": self.window_violations,
            "paths": dict(self.paths),
        }
        if self.page_cache is not None:
            found["page_cache"] = self.page_cache.as_dict()
        return found

    def reset(self) -> None:
        self.requests = self.unauthorized = self.rate_limited = 0
        self.creates = self.updates = self.deletes = self.idempotent_replays = 0
        self.tokens_issued = self.windows_closed = self.window_violations = 0
        # Fault kinds stay listed, at zero, so clients can index them without a default.
        self.faults = dict.fromkeys(self.faults, 0)
        self.paths.clear()
        if self.page_cache is not None:
            self.page_cache.reset_counters()


class StatsMiddleware:
    """ASGI middleware that counts every request outside the admin paths, by path."""

    def __init__(self, app: ASGIApp, *, stats: SandboxStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = route_path(scope)
            if path not in ADMIN_PATHS:
                self.stats.requests += 1
                self.stats.paths[path] += 1
        await self.app(scope, receive, send)


def admin_routes(
    stats: SandboxStats,
    reset: Callable[[], None],
    touch: Callable[[Request], Awaitable[Response]] | None = None,
) -> list[BaseRoute]:
    """Return `GET /_stats`, `POST /_reset` and, given `touch`, `POST /_touch`.

    `reset` restores the app's initial state.
    """

    async def get_stats(request: Request) -> Response:
        return JSONResponse(stats.as_dict())

    async def post_reset(request: Request) -> Response:
        reset()
        return JSONResponse({"reset": True})

    routes: list[BaseRoute] = [
        Route("/_stats", get_stats, methods=["GET"]),
        Route("/_reset", post_reset, methods=["POST"]),
    ]
    if touch is not None:
        routes.append(Route("/_touch", touch, methods=["POST"]))
    return routes


def touch_response(
    raw: bytes,
    resources: Mapping[str, BaseRecordStore[Any]],
    touched: Callable[[str, list[Any]], None] | None = None,
) -> Response:
    """Answer `POST /_touch`: `{"resource": NAME, "ids": [...]}` sets `updated_at` to now.

    `touched(resource, records)` is told of the changed records (the shop's webhooks).
    """
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return error_response(400, "invalid_json", "The body is not valid JSON.")
    names = ", ".join(resources)
    if not isinstance(payload, dict) or payload.get("resource") not in resources:
        return error_response(400, "invalid_parameter", f"resource must be one of {names}.")
    ids = payload.get("ids")
    if not isinstance(ids, list) or not all(type(item) is int for item in ids):
        return error_response(400, "invalid_parameter", "ids must be a list of integers.")
    resource = payload["resource"]
    store = resources[resource]
    missing = store.missing(ids)
    if missing:
        return error_response(404, "not_found", f"No {resource} with ids {missing}.")
    stamp = now_timestamp()
    records = store.touch(ids, stamp)
    if touched is not None:
        touched(resource, records)
    return JSONResponse({"resource": resource, "touched": ids, "updated_at": stamp})
