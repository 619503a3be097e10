"""The sandbox's own bookkeeping: request counters and the `/_stats` and `/_reset` routes.

Tests read `/_stats` to check what a client really did to the "third party": how many
requests it sent, how many 429s and faults it got, how many records it created.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._responses import JSONResponse

__all__ = ["ADMIN_PATHS", "SandboxStats", "StatsMiddleware", "admin_routes"]

# Admin paths are exempt from auth, rate limits, faults and the counters.
ADMIN_PATHS = frozenset({"/_stats", "/_reset"})


@dataclass
class SandboxStats:
    """Counters of what clients did to one sandbox app since it started or was reset."""

    requests: int = 0
    unauthorized: int = 0
    rate_limited: int = 0
    creates: int = 0
    idempotent_replays: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    paths: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "unauthorized": self.unauthorized,
            "rate_limited": self.rate_limited,
            "faults_injected": sum(self.faults.values()),
            "faults": dict(self.faults),
            "creates": self.creates,
            "idempotent_replays": self.idempotent_replays,
            "paths": dict(self.paths),
        }

    def reset(self) -> None:
        self.requests = self.unauthorized = self.rate_limited = 0
        self.creates = self.idempotent_replays = 0
        # Fault kinds stay listed, at zero, so clients can index them without a default.
        self.faults = dict.fromkeys(self.faults, 0)
        self.paths.clear()


class StatsMiddleware:
    """ASGI middleware that counts every request outside the admin paths, by path."""

    def __init__(self, app: ASGIApp, *, stats: SandboxStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in ADMIN_PATHS:
            self.stats.requests += 1
            self.stats.paths[scope["path"]] += 1
        await self.app(scope, receive, send)


def admin_routes(stats: SandboxStats, reset: Callable[[], None]) -> list[BaseRoute]:
    """Return `GET /_stats` and `POST /_reset`; `reset` restores the app's initial state."""

    async def get_stats(request: Request) -> Response:
        return JSONResponse(stats.as_dict())

    async def post_reset(request: Request) -> Response:
        reset()
        return JSONResponse({"reset": True})

    return [
        Route("/_stats", get_stats, methods=["GET"]),
        Route("/_reset", post_reset, methods=["POST"]),
    ]
