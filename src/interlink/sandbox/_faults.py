"""Fault injection: answers a flaky third-party API gives, drawn from a seeded RNG.

Each request draws twice from `random.Random(seed)`, once for "slow" and once for the
outcome, so a run with the same requests in the same order meets the same faults.

A dropped connection must reach the client as a closed socket with no HTTP response at all
(httpx raises `RemoteProtocolError: Server disconnected without sending a response`). ASGI
gives an app no handle on the socket, and an app that raises or returns before starting a
response gets a 500 from the server, which is not a drop. What works is to start a response
the server cannot serialise: a header value with CR LF would split the response (header
injection), so h11 and httptools refuse to write it, but uvicorn has already marked the
response as started. The exception raised next then makes uvicorn close the transport
without a byte written, instead of answering 500. A server that did write the start still
closes mid-response, because the declared body never comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._admin import SandboxStats, is_admin_path
from ._responses import error_response

__all__ = [
    "DroppedConnectionError",
    "FAULT_KINDS",
    "FaultConfig",
    "FaultDecision",
    "FaultMiddleware",
    "FaultPlan",
]

FaultOutcome = Literal["server_error", "unavailable", "rate_limited", "drop", "lost_response"]
FAULT_KINDS = ("server_error", "unavailable", "rate_limited", "slow", "drop", "lost_response")


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """How often a sandbox app misbehaves; every rate is a probability per request.

    The outcome rates (`server_error_rate`, `unavailable_rate`, `drop_rate`,
    `lost_response_rate`) are exclusive and must add up to at most 1; `slow_rate` is drawn
    independently and delays whatever answer follows by `slow_seconds`.

    Args:
        server_error_rate: answer 500.
        unavailable_rate: answer 503 with `Retry-After: <unavailable_retry_after>`.
        rate_limited_rate: answer 429 with `Retry-After: <rate_limited_retry_after>`, and
            close the window: until it ends, every request of the same client (the value
            of the `window_key` header, or all requests without one) is answered 429 too,
            and one that arrives more than `in_flight_grace` seconds after the window
            closed counts as a `window_violation` (it was sent after the 429 came back).
        drop_rate: close the connection before doing anything; nothing is processed.
        lost_response_rate: process the request (a POST creates its record), then close
            the connection instead of answering, as when a reply is lost on the way back.

    ```python
    app = create_shop_app(faults=FaultConfig(unavailable_rate=0.1, drop_rate=0.02, seed=7))
    ```
    """

    server_error_rate: float = 0.0
    unavailable_rate: float = 0.0
    drop_rate: float = 0.0
    lost_response_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 1.0
    unavailable_retry_after: int = 1
    rate_limited_rate: float = 0.0
    rate_limited_retry_after: int = 1
    window_key: str | None = None
    in_flight_grace: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        rates = {
            "server_error_rate": self.server_error_rate,
            "unavailable_rate": self.unavailable_rate,
            "rate_limited_rate": self.rate_limited_rate,
            "drop_rate": self.drop_rate,
            "lost_response_rate": self.lost_response_rate,
            "slow_rate": self.slow_rate,
        }
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        if sum(rates.values()) - self.slow_rate > 1.0 + 1e-9:
            raise ValueError("the outcome rates must add up to at most 1")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must not be negative")
        if self.unavailable_retry_after < 0 or self.rate_limited_retry_after < 0:
            raise ValueError("a Retry-After must not be negative")


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """The faults chosen for one request: an outcome (None for a normal answer) and a delay."""

    outcome: FaultOutcome | None
    slow: bool


class FaultPlan:
    """The seeded sequence of fault decisions of one app."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)

    def next(self) -> FaultDecision:
        config = self.config
        slow = self._rng.random() < config.slow_rate
        draw = self._rng.random()
        outcomes: tuple[tuple[FaultOutcome, float], ...] = (
            ("drop", config.drop_rate),
            ("lost_response", config.lost_response_rate),
            ("server_error", config.server_error_rate),
            ("unavailable", config.unavailable_rate),
            ("rate_limited", config.rate_limited_rate),
        )
        for outcome, rate in outcomes:
            if draw < rate:
                return FaultDecision(outcome=outcome, slow=slow)
            draw -= rate
        return FaultDecision(outcome=None, slow=slow)

    def reset(self) -> None:
        """Restart the sequence from the seed."""
        self._rng = random.Random(self.config.seed)


class DroppedConnectionError(Exception):
    """Raised by the app to drop a connection; in-process transports re-raise it."""


async def _drop_connection(send: Send) -> None:
    # See the module docstring: the CR LF makes the server write nothing for this start.
    unserialisable: Message = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-length", b"1"), (b"x-sandbox-fault", b"drop\r\n")],
    }
    with contextlib.suppress(Exception):
        await send(unserialisable)
    raise DroppedConnectionError("sandbox fault: connection dropped")


class FaultMiddleware:
    """ASGI middleware that injects the faults `plan` draws; admin paths are exempt."""

    def __init__(self, app: ASGIApp, *, plan: FaultPlan, stats: SandboxStats) -> None:
        self.app = app
        self.plan = plan
        self.stats = stats
        # Client -> (when its window closed, when it opens again), after a 429 fault.
        self.windows: dict[str, tuple[float, float]] = {}
        for kind in FAULT_KINDS:
            stats.faults.setdefault(kind, 0)

    def _client(self, scope: Scope) -> str:
        wanted = (self.plan.config.window_key or "").lower().encode()
        for name, value in scope.get("headers", []):
            if wanted and name == wanted:
                return str(value.decode("latin-1"))
        return ""

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, until: float) -> None:
        wait = max(1, math.ceil(until - time.monotonic()))
        response = error_response(
            429,
            "rate_limited",
            "Sandbox fault: too many requests.",
            headers={"Retry-After": str(wait)},
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_admin_path(scope):
            await self.app(scope, receive, send)
            return
        client = self._client(scope)
        window = self.windows.get(client)
        if window is not None:
            now = time.monotonic()
            closed, until = window
            if now < until:
                if now - closed > self.plan.config.in_flight_grace:
                    self.stats.window_violations += 1
                await self._refuse(scope, receive, send, until)
                return
            del self.windows[client]
        decision = self.plan.next()
        if decision.slow:
            self.stats.faults["slow"] += 1
            await asyncio.sleep(self.plan.config.slow_seconds)
        if decision.outcome is None:
            await self.app(scope, receive, send)
            return
        self.stats.faults[decision.outcome] += 1
        if decision.outcome == "drop":
            await _drop_connection(send)
        elif decision.outcome == "lost_response":

            async def discard(message: Message) -> None:
                pass

            await self.app(scope, receive, discard)
            await _drop_connection(send)
        elif decision.outcome == "rate_limited":
            now = time.monotonic()
            until = now + self.plan.config.rate_limited_retry_after
            self.windows[client] = (now, until)
            self.stats.windows_closed += 1
            await self._refuse(scope, receive, send, until)
        elif decision.outcome == "server_error":
            response = error_response(500, "internal_error", "Sandbox fault: internal error.")
            await response(scope, receive, send)
        else:
            retry_after = str(self.plan.config.unavailable_retry_after)
            response = error_response(
                503,
                "unavailable",
                "Sandbox fault: service unavailable.",
                headers={"Retry-After": retry_after},
            )
            await response(scope, receive, send)
