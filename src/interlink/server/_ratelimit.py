"""Per-key, per-route rate limits (`server.rate_limits`), shared through the database.

Each API key has one GCRA bucket per configured route (`"POST /jobs"`) and one for
everything else (`default`); every server process sharing the database spends from the
same rows (`interlink.store.take_rate_limit`: one upsert per request). Answers carry the
IETF draft headers in their inline form (draft-ietf-httpapi-ratelimit-headers up to -07):

```
RateLimit-Policy: 10;w=60
RateLimit: limit=10, remaining=3, reset=42
Retry-After: 6                      (429 only)
```
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlink.config import RouteLimit
from interlink.store import ApiKey, RateDecision, prune_rate_limits, take_rate_limit

from ._envelope import API_PREFIX, error_response

__all__ = ["RateLimitMiddleware", "RouteLimits", "rate_limit_headers", "too_many_requests"]

_PRUNE_EVERY = 300.0


class RouteLimits:
    """Which configured limit a request falls under: `"METHOD /path"` keys, then `default`.

    Paths are relative to `/api/v1` and may name parameters: `"POST /jobs/{id}/cancel"`.
    """

    def __init__(self, limits: Mapping[str, RouteLimit]) -> None:
        self.default = limits["default"]
        self._routes: list[tuple[str, re.Pattern[str], str, RouteLimit]] = []
        for key, limit in limits.items():
            if key == "default":
                continue
            method, _, path = key.partition(" ")
            pattern = re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(path.rstrip("/")))
            self._routes.append((method, re.compile(f"^{pattern}/?$"), key, limit))

    def route(self, method: str, path: str) -> tuple[str, RouteLimit]:
        """`(route key, limit)` for a request: `("POST /jobs", 10/60s)`, `("default", ...)`."""
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        for route_method, pattern, key, limit in self._routes:
            if route_method == method and pattern.match(path):
                return key, limit
        return "default", self.default


def rate_limit_headers(decision: RateDecision) -> dict[str, str]:
    headers = {
        "RateLimit-Policy": f"{decision.limit};w={decision.period:g}",
        "RateLimit": (
            f"limit={decision.limit}, remaining={decision.remaining}, "
            f"reset={math.ceil(decision.reset_after)}"
        ),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
    return headers


async def too_many_requests(
    scope: Scope, receive: Receive, send: Send, decision: RateDecision, what: str
) -> None:
    wait = max(1, math.ceil(decision.retry_after))
    response = error_response(
        scope,
        429,
        f"Rate limit of {decision.limit} requests per {decision.period:g} s reached for "
        f"{what}; retry in {wait} s.",
        headers=rate_limit_headers(decision),
    )
    await response(scope, receive, send)


class RateLimitMiddleware:
    """Spend one request of the caller's bucket for this route; 429 when it is empty.

    Runs after `ApiKeyMiddleware`: requests without a key (public routes) pass untouched.
    """

    def __init__(self, app: ASGIApp, engine: sa.Engine, limits: RouteLimits) -> None:
        self.app = app
        self.engine = engine
        self.limits = limits
        self._pruned = time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = scope.get("state", {}).get("api_key") if scope["type"] == "http" else None
        if not isinstance(key, ApiKey):
            await self.app(scope, receive, send)
            return
        route, limit = self.limits.route(scope["method"], scope["path"])
        bucket = f"key:{key.id} {route}"
        decision = await run_in_threadpool(
            take_rate_limit, self.engine, bucket, limit.limit, limit.period
        )
        await self._maybe_prune()
        if not decision.allowed:
            await too_many_requests(scope, receive, send, decision, f"{route} with this key")
            return
        headers = rate_limit_headers(decision)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in headers.items():
                    out[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned >= _PRUNE_EVERY:
            self._pruned = now
            await run_in_threadpool(prune_rate_limits, self.engine)
