"""API-key authentication, scopes and rate limits for `/api/v1`, as pure ASGI middleware.

`Authorization: Bearer <api key>` is verified against the database and the key then kept
for `KEY_CACHE_SECONDS` (interlink.store.ApiKeyCache): a key revoked in this process fails
on its next request, one revoked by another process (`interlink apikeys revoke`) within
that bound. The scope a request needs follows from the route it reaches: GET and HEAD
routes need `read`, POST routes (submit and cancel jobs) `write`, any other route `admin`;
a key's scope includes the ones below it. A method no route at the path takes needs only a
valid key, and routing then answers 404 or 405: a PUT with a read key is "method not
allowed", not "needs admin".

Each request with a valid key spends one request of the key's bucket for its route
(_ratelimit.py), before its scope is checked: a 403 counts like any answer. Requests
without a valid key (none, a wrong or a revoked one) spend from their client address's
`anonymous` bucket; once that is spent they get 429 instead of 401. The key is always
checked first, so a valid key is never refused for what others did from its address (one
attacker behind the same proxy cannot lock everyone out). The address is the peer's, or
the client's named by a trusted proxy (_proxies.py); an IPv6 client is its /64
(`address_bucket`). Every answer below this middleware,
errors included, carries the rate-limit headers of the bucket the request spent from; the
public paths (health, the OpenAPI document, the docs page) are outside it, unthrottled,
so that load balancers' health checks are never refused.

A request whose key is cached and whose bucket has requests reserved in this process
passes without leaving the event loop; otherwise one thread call verifies the key and one
reserves requests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlink.store import ApiKey, ApiKeyCache, ApiKeyScope

from ._envelope import API_PREFIX, error_response
from ._ratelimit import Limiter, RouteLimits, rate_limit_headers, too_many_requests
from ._routes import RouteIndex

__all__ = ["RATE_LIMIT_HEADERS", "ApiKeyMiddleware", "address_bucket", "required_scope"]


def required_scope(method: str) -> ApiKeyScope:
    if method in ("GET", "HEAD"):
        return "read"
    if method == "POST":
        return "write"
    return "admin"


def address_bucket(address: str | None) -> str:
    """Whose `anonymous` bucket a client address spends from: an IPv4 address's own (also
    when it arrives IPv4-mapped, `::ffff:192.0.2.9`), an IPv6 address's /64.

    One IPv6 host has a /64 at least, 2^64 addresses: counted one by one, each request
    could come from a fresh address with a full bucket (and leave a row behind)."""
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]  # not an IP (a Unix socket's path): counted as it is
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else ""


RATE_LIMIT_HEADERS = "rate_limit_headers"
"""Where in `scope["state"]` the request's rate-limit headers are, for answers made above
this middleware (the last-resort 500)."""


class ApiKeyMiddleware:
    """401 without a valid key, 429 when its bucket is empty, 403 when its scope is too
    small; the key goes in `scope["state"]["api_key"]` for the routes."""

    def __init__(
        self,
        app: ASGIApp,
        keys: ApiKeyCache,
        limiter: Limiter,
        limits: RouteLimits,
        routes: RouteIndex,
        *,
        public: Collection[str] = (),
    ) -> None:
        self.app = app
        self.keys = keys
        self.limiter = limiter
        self.limits = limits
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

    async def _key(self, token: str | None) -> ApiKey | None:
        if not token:
            return None
        key = self.keys.cached(token)
        if key is None:
            key = await run_in_threadpool(self.keys.verify, token)
        return key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = _bearer(Headers(scope=scope))
        key = await self._key(token)
        state = scope.setdefault("state", {})
        if key is None:
            client = scope.get("client")
            bucket = f"addr:{address_bucket(client[0] if client else None)} auth-failures"
            decision = await self.limiter.take(bucket, self.limits.anonymous)
            headers = state[RATE_LIMIT_HEADERS] = rate_limit_headers(decision)
            if not decision.allowed:
                await too_many_requests(
                    scope,
                    receive,
                    send,
                    decision,
                    "requests without a valid API key from this address",
                )
                return
            challenge = 'Bearer realm="interlink"'
            if token:
                challenge += ', error="invalid_token"'
            message = (
                "The API key is not valid (unknown or revoked)."
                if token
                else "A valid API key is required (Authorization: Bearer <api key>)."
            )
            await error_response(
                scope, 401, message, headers={**headers, "WWW-Authenticate": challenge}
            )(scope, receive, send)
            return
        route, limit = self.limits.route(scope["method"], scope["path"])
        decision = await self.limiter.take(f"key:{key.id} {route}", limit)
        headers = state[RATE_LIMIT_HEADERS] = rate_limit_headers(decision)
        if not decision.allowed:
            await too_many_requests(scope, receive, send, decision, f"{route} with this key")
            return
        needed = self._needed(scope["method"], scope["path"])
        if not key.allows(needed):
            await error_response(
                scope,
                403,
                f"This API key has scope {key.scope!r}; this request needs {needed!r}.",
                details=[{"field": "scope", "issue": f"needs {needed}"}],
                headers=headers,
            )(scope, receive, send)
            return
        state["api_key"] = key

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in headers.items():
                    out[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
