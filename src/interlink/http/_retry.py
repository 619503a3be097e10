"""Retries: a pure policy that decides, and a transport wrapper that acts on it.

Exponential backoff with full jitter (AWS "Exponential Backoff and Jitter"): the wait after
failed attempt n is uniform(0, min(cap, base * 2**(n-1))). A server's `Retry-After` replaces
the backoff; one longer than `max_retry_after` is not slept in-process at all, the error is
raised with `retry_after` set so a job can be rescheduled for then.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from interlink.types import Clock, Sleep, WallClock

from ._headers import parse_retry_after, rate_limit_refusal
from ._redact import Redactor
from ._urls import url_before_auth

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_SAFE",
    "SHOULD_RETRY",
    "RetryBudget",
    "RetryPolicy",
    "RetryTransport",
    "full_jitter",
    "log_headers",
]

logger = logging.getLogger("interlink.http")
header_logger = logging.getLogger("interlink.http.headers")
"""Each attempt's request and response headers, masked, at DEBUG (`interlink -vv`)."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

RETRY_SAFE = "interlink.retry_safe"
"""Request extension: True marks a non-idempotent request as safe to retry (token requests)."""

ATTEMPTS = "interlink.attempts"
"""Request extension the retry transport sets to the number of attempts made."""

SHOULD_RETRY = "interlink.should_retry"
"""Request extension: a callable(response) -> bool | None that can veto a retry the policy
allows (False), e.g. a SOAP client fault that arrives as HTTP 500."""

RATE_WAIT = "interlink.rate_limit_wait"
"""Request extension: seconds the last attempt waited for the rate limiter."""

MAX_WAIT = "interlink.max_rate_limit_wait"
"""Request extension the retry transport sets to its policy's `max_retry_after`: the rate
limiter raises `RateLimitedError` rather than hold the request longer than that."""

# Statuses worth another attempt whatever the method's idempotency, once it is safe to
# resend: the server did not act on the request or asked us to come back.
_TRANSIENT = frozenset({408, 425, 429, 502, 503, 504})

# Sent nothing: the request never reached the server, so resending is safe for any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def full_jitter(ceiling: float) -> float:
    return random.uniform(0.0, ceiling)


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a request again and how long to wait first. Pure: no I/O, no clock."""

    max_attempts: int = 4
    base: float = 0.5
    cap: float = 20.0
    max_retry_after: float = 60.0
    jitter: Callable[[float], float] = field(default=full_jitter, compare=False)

    def backoff(self, failed_attempts: int) -> float:
        """The wait after `failed_attempts` failures, jitter applied."""
        ceiling = min(self.cap, self.base * 2 ** (failed_attempts - 1))
        return self.jitter(ceiling)

    def may_resend(self, request: httpx.Request, idempotency_header: str | None) -> bool:
        """True when sending this request twice cannot do its effect twice."""
        if request.method in IDEMPOTENT_METHODS or request.extensions.get(RETRY_SAFE):
            return True
        return idempotency_header is not None and idempotency_header in request.headers

    def retry_status(self, status: int, resendable: bool) -> bool:
        if status == 429:
            # The server refused before acting on the request (RFC 6585), so even a
            # non-idempotent request may go again.
            return True
        if status in _TRANSIENT or status == 500:
            return resendable
        return False

    def retry_exception(self, exc: httpx.TransportError, resendable: bool) -> bool:
        if isinstance(exc, _NOT_SENT):
            return True
        return resendable

    def delay(self, failed_attempts: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt; None when the server asks for too long."""
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after
        return self.backoff(failed_attempts)


class RetryBudget:
    """Stops retrying when most requests to an upstream fail (AWS SDK "standard" mode).

    Each retry spends `retry_cost` tokens (a timeout `timeout_cost`), each request that
    succeeds at the first attempt earns one back; with the bucket empty, failures are raised
    at once instead of multiplying the load on a struggling server.
    """

    def __init__(self, capacity: int = 500, retry_cost: int = 5, timeout_cost: int = 10) -> None:
        self.capacity = capacity
        self.retry_cost = retry_cost
        self.timeout_cost = timeout_cost
        self.tokens = capacity

    def spend(self, timeout: bool) -> bool:
        cost = self.timeout_cost if timeout else self.retry_cost
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def earn(self) -> None:
        self.tokens = min(self.capacity, self.tokens + 1)


class RetryTransport(httpx.AsyncBaseTransport):
    """Sends a request again while the policy says so, logging one line per attempt.

    The number of attempts made is left in `request.extensions["interlink.attempts"]`, so
    the client can report it with the final response or error.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        policy: RetryPolicy | None = None,
        *,
        idempotency_header: str | None = None,
        budget: RetryBudget | None = None,
        redactor: Redactor | None = None,
        clock: Clock = time.monotonic,
        wall: WallClock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._inner = inner
        self.policy = policy or RetryPolicy()
        self.idempotency_header = idempotency_header
        self.budget = budget if budget is not None else RetryBudget()
        self._redactor = redactor or Redactor()
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self.attempts = 0
        self.retries = 0
        self.waited = 0.0
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        policy = self.policy
        resendable = policy.may_resend(request, self.idempotency_header)
        # A window the server closed for longer than a Retry-After this policy would sleep
        # is not slept in the rate limiter either.
        request.extensions[MAX_WAIT] = policy.max_retry_after
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            request.extensions[ATTEMPTS] = attempt
            request.extensions.pop(RATE_WAIT, None)  # set again by this attempt's gate
            started = self._clock()
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError as exc:
                elapsed = self._clock() - started
                self.errors[type(exc).__name__] += 1
                wait: float | None = None
                if (
                    attempt < policy.max_attempts
                    and policy.retry_exception(exc, resendable)
                    and self.budget.spend(isinstance(exc, httpx.TimeoutException))
                ):
                    wait = policy.backoff(attempt)
                self._log(request, type(exc).__name__, elapsed, attempt, wait, None)
                if wait is None:
                    raise
                await self._wait(wait)
                continue

            elapsed = self._clock() - started
            status = response.status_code
            self.statuses[status] += 1
            wait = None
            # A 403 that is the server's rate limit (GitHub's) is paced as a 429 is.
            limited, hinted = rate_limit_refusal(status, response.headers, self._wall())
            if (
                status >= 400
                and attempt < policy.max_attempts
                and policy.retry_status(429 if limited else status, resendable)
            ):
                retry_after = (
                    hinted
                    if limited
                    else parse_retry_after(response.headers.get("retry-after"), self._wall())
                )
                wait = policy.delay(attempt, retry_after)
                veto = request.extensions.get(SHOULD_RETRY)
                if veto is not None and wait is not None:
                    await response.aread()
                    if veto(response) is False:
                        wait = None
                # A rate-limit refusal is the server pacing us, not failing: it costs no budget.
                if wait is not None and not limited and not self.budget.spend(False):
                    wait = None
            elif attempt == 1 and status < 500:
                self.budget.earn()
            self._log(request, status, elapsed, attempt, wait, response)
            if wait is None:
                return response
            await response.aclose()
            await self._wait(wait)

    async def _wait(self, seconds: float) -> None:
        self.retries += 1
        self.waited += seconds
        if seconds > 0:
            await self._sleep(seconds)

    def _log(
        self,
        request: httpx.Request,
        outcome: int | str,
        elapsed: float,
        attempt: int,
        wait: float | None,
        response: httpx.Response | None,
    ) -> None:
        # Off (the default), a request pays for this one check and nothing else.
        if not logger.isEnabledFor(logging.DEBUG):
            return
        url = self._redactor.url(str(url_before_auth(request)))
        limited = float(request.extensions.get(RATE_WAIT, 0.0))
        # The exchange's own time: the wait for the rate limit is shown apart.
        elapsed = max(elapsed - limited, 0.0)
        retry = f", retrying in {wait:.2f} s" if wait is not None else ""
        logger.debug(
            "%s %s -> %s in %.1f ms (attempt %d, rate-limit wait %.2f s%s)",
            request.method,
            url,
            outcome,
            elapsed * 1000,
            attempt,
            limited,
            retry,
            extra={
                "http_method": request.method,
                "http_url": url,
                "http_status": outcome if isinstance(outcome, int) else None,
                "http_error": outcome if isinstance(outcome, str) else None,
                "duration_ms": round(elapsed * 1000, 3),
                "attempt": attempt,
                "rate_limit_wait_s": limited,
                "retry_wait_s": wait,
            },
        )
        if header_logger.isEnabledFor(logging.DEBUG):
            log_headers(self._redactor, request, url, response)

    async def aclose(self) -> None:
        await self._inner.aclose()


def log_headers(
    redactor: Redactor, request: httpx.Request, url: str, response: httpx.Response | None
) -> None:
    """An attempt's headers as sent and received, credentials masked, on
    `interlink.http.headers` (`-vv`): `> ` lines for the request's, `< ` for the response's.
    The caller checks that the logger is on."""
    lines = [f"> {k}: {v}" for k, v in redactor.headers(request.headers.multi_items())]
    if response is not None:
        lines.append(f"< HTTP {response.status_code}")
        lines += [f"< {k}: {v}" for k, v in redactor.headers(response.headers.multi_items())]
    header_logger.debug("%s %s headers:\n  %s", request.method, url, "\n  ".join(lines))
