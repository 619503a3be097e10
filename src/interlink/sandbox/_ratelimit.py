"""A server-side token bucket and the ASGI middleware that enforces it.

One bucket per app, shared by every client, as a small third-party API would do it. The
decision is pure (`TokenBucket.take(now)`); the middleware turns it into a 429 or into
rate-limit headers on the answer.

Header formats (the `headers` style picks the families):

- `X-RateLimit-Limit: <burst>`, `X-RateLimit-Remaining: <whole tokens left>`,
  `X-RateLimit-Reset: <epoch seconds with 3 decimals>` (GitHub style).
- `RateLimit-Policy: "default";q=<burst>;w=<window>` and
  `RateLimit: "default";r=<remaining>;t=<seconds>` (IETF draft-ietf-httpapi-ratelimit-headers).
- On 429 also `Retry-After: <seconds>` (RFC 9110 §10.2.3, delay-seconds form).

"Reset" is the moment the bucket next gains a whole token (now, if it is full), so after a
429 it is when a retry can succeed. The window `w` is the time an empty bucket takes to
refill `burst` tokens.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._admin import SandboxStats, is_admin_path
from ._responses import error_body

__all__ = [
    "RateLimitDecision",
    "RateLimitHeaderStyle",
    "RateLimitMiddleware",
    "TokenBucket",
    "rate_limit_headers",
]

RateLimitHeaderStyle = Literal["x-ratelimit", "ietf", "both"]
_STYLES: tuple[RateLimitHeaderStyle, ...] = ("x-ratelimit", "ietf", "both")


def _ceil_seconds(seconds: float) -> int:
    # Rounding first keeps float noise (30.000000000000004) from adding a whole second.
    return math.ceil(round(seconds, 6))


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """The outcome of one `TokenBucket.take`.

    Args:
        remaining: whole tokens left after this request.
        reset_after: seconds until the bucket next gains a whole token (0 when full).
    """

    allowed: bool
    remaining: int
    reset_after: float

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait before retrying, rounded up and at least 1."""
        return max(1, _ceil_seconds(self.reset_after))


class TokenBucket:
    """A token bucket holding up to `burst` tokens, refilled at `rate` tokens per `per` seconds.

    ```python
    bucket = TokenBucket(rate=10, per=1, burst=20)
    decision = bucket.take(time.monotonic())
    ```
    """

    def __init__(self, rate: float, per: float, burst: int) -> None:
        if rate <= 0 or per <= 0:
            raise ValueError("rate and per must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.per = per
        self.burst = burst
        self._tokens_per_second = rate / per
        self._tokens = float(burst)
        self._updated: float | None = None

    @property
    def window(self) -> int:
        """Seconds an empty bucket takes to refill completely, rounded up."""
        return max(1, _ceil_seconds(self.burst * self.per / self.rate))

    def take(self, now: float) -> RateLimitDecision:
        """Spend one token if there is one; `now` is a monotonic time in seconds."""
        if self._updated is not None:
            elapsed = max(now - self._updated, 0.0)
            self._tokens = min(self.burst, self._tokens + elapsed * self._tokens_per_second)
        self._updated = now
        allowed = self._tokens >= 1.0
        if allowed:
            self._tokens -= 1.0
        whole = math.floor(self._tokens)
        if whole >= self.burst:
            reset_after = 0.0
        else:
            reset_after = (whole + 1 - self._tokens) * self.per / self.rate
        return RateLimitDecision(allowed=allowed, remaining=whole, reset_after=reset_after)

    def reset(self) -> None:
        """Fill the bucket again."""
        self._tokens = float(self.burst)
        self._updated = None


def rate_limit_headers(
    decision: RateLimitDecision,
    *,
    burst: int,
    window: int,
    wall_time: float,
    style: RateLimitHeaderStyle = "both",
) -> list[tuple[bytes, bytes]]:
    """Build the rate-limit headers for `decision`; `wall_time` is the current epoch time."""
    seconds = decision.retry_after if not decision.allowed else _ceil_seconds(decision.reset_after)
    headers: list[tuple[bytes, bytes]] = []
    if style in ("x-ratelimit", "both"):
        headers += [
            (b"x-ratelimit-limit", str(burst).encode()),
            (b"x-ratelimit-remaining", str(decision.remaining).encode()),
            (b"x-ratelimit-reset", f"{wall_time + decision.reset_after:.3f}".encode()),
        ]
    if style in ("ietf", "both"):
        headers += [
            (b"ratelimit-policy", f'"default";q={burst};w={window}'.encode()),
            (b"ratelimit", f'"default";r={decision.remaining};t={seconds}'.encode()),
        ]
    if not decision.allowed:
        headers.append((b"retry-after", str(decision.retry_after).encode()))
    return headers


class RateLimitMiddleware:
    """ASGI middleware that answers 429 when `bucket` is empty and adds the headers otherwise.

    The admin paths (`/_stats`, `/_reset`, `/_touch`) are never limited.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        bucket: TokenBucket,
        stats: SandboxStats,
        style: RateLimitHeaderStyle = "both",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if style not in _STYLES:
            raise ValueError(f"style must be one of {', '.join(_STYLES)}, not {style!r}")
        self.app = app
        self.bucket = bucket
        self.stats = stats
        self.style = style
        self.clock = clock
        self.wall_clock = wall_clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_admin_path(scope):
            await self.app(scope, receive, send)
            return
        decision = self.bucket.take(self.clock())
        headers = rate_limit_headers(
            decision,
            burst=self.bucket.burst,
            window=self.bucket.window,
            wall_time=self.wall_clock(),
            style=self.style,
        )
        if not decision.allowed:
            self.stats.rate_limited += 1
            body = error_body("rate_limited", "Too many requests; retry after the reset time.")
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
