"""API-key authentication and scopes for `/api/v1`, as pure ASGI middleware.

`Authorization: Bearer <api key>` is looked up by its SHA-256 on every request (no cache:
a revoked key fails on the very next request). The scope a request needs follows from the
route it reaches: GET and HEAD routes need `read`, POST routes (submit and cancel jobs)
`write`, any other route `admin`; a key's scope includes the ones below it. A method no
route at the path takes needs only a valid key, and routing then answers 404 or 405: a
PUT with a read key is "method not allowed", not "needs admin".

Failed attempts (no key, a wrong or revoked one) are counted per client address against
the `default` rate limit; once that is spent, further failures from the address get 429
instead of 401. The key is always checked first, so a valid key is never refused for what
others did from its address (one attacker behind the same proxy cannot lock everyone
out). The address is the peer's, or the client's named by a trusted proxy (_proxies.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from interlink.config import RouteLimit
from interlink.store import ApiKey, ApiKeyScope, RateDecision, take_rate_limit, verify_api_key

from ._envelope import API_PREFIX, error_response
from ._ratelimit import too_many_requests
from ._routes import RouteIndex

__all__ = ["ApiKeyMiddleware", "required_scope"]


def required_scope(method: str) -> ApiKeyScope:
    if method in ("GET", "HEAD"):
        return "read"
    if method == "POST":
        return "write"
    return "admin"


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else ""


@dataclass(frozen=True, slots=True)
class _Verdict:
    key: ApiKey | None = None
    throttled: RateDecision | None = None


class ApiKeyMiddleware:
    """401 without a valid key, 403 when its scope is too small; the key goes in
    `scope["state"]["api_key"]` for what runs after (rate limits, routes)."""

    def __init__(
        self,
        app: ASGIApp,
        engine: sa.Engine,
        failures: RouteLimit,
        routes: RouteIndex,
        *,
        public: Collection[str] = (),
    ) -> None:
        self.app = app
        self.engine = engine
        self.failures = failures
        self.routes = routes
        self.public = frozenset(public)

    def _needed(self, method: str, path: str) -> ApiKeyScope:
        if method in self.routes.methods(path):
            return required_scope(method)
        return "read"  # no such route: any valid key learns only that (404 or 405)

    def _guarded(self, path: str) -> bool:
        return (path == API_PREFIX or path.startswith(API_PREFIX + "/")) and (
            path not in self.public
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = _bearer(Headers(scope=scope))
        client = scope.get("client")
        address = client[0] if client else "unknown"
        verdict = await run_in_threadpool(self._check, token, address)
        if verdict.throttled is not None:
            await too_many_requests(
                scope, receive, send, verdict.throttled, "failed authentication from this address"
            )
            return
        if verdict.key is None:
            challenge = 'Bearer realm="interlink"'
            if token:
                challenge += ', error="invalid_token"'
            message = (
                "The API key is not valid (unknown or revoked)."
                if token
                else "A valid API key is required (Authorization: Bearer <api key>)."
            )
            await error_response(scope, 401, message, headers={"WWW-Authenticate": challenge})(
                scope, receive, send
            )
            return
        needed = self._needed(scope["method"], scope["path"])
        if not verdict.key.allows(needed):
            await error_response(
                scope,
                403,
                f"This API key has scope {verdict.key.scope!r}; this request needs {needed!r}.",
                details=[{"field": "scope", "issue": f"needs {needed}"}],
            )(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = verdict.key
        await self.app(scope, receive, send)

    def _check(self, token: str | None, address: str) -> _Verdict:
        key = verify_api_key(self.engine, token) if token else None
        if key is not None:
            return _Verdict(key=key)
        bucket = f"addr:{address} auth-failures"
        spent = take_rate_limit(self.engine, bucket, self.failures.limit, self.failures.period)
        return _Verdict(throttled=None if spent.allowed else spent)
