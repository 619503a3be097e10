"""The "shop" sandbox: a customers API with offset pagination, auth, limits and faults.

Routes:

- `GET /customers?offset=&limit=` answers `{"data": [...], "total", "offset", "limit"}`;
  `limit` defaults to 100 and is capped at 1000.
- `GET /customers/{id}` answers one customer, or 404.
- `POST /customers` creates a customer; an `Idempotency-Key` header makes a retry replay
  the stored answer (with `Idempotent-Replayed: true`) instead of creating twice.
- `GET /echo` (any method) answers the request's method, path, query and headers.
- `GET /_stats` and `POST /_reset`, without auth, limits or faults.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, TypedDict, get_args

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._admin import SandboxStats, StatsMiddleware, admin_routes
from ._auth import AuthMiddleware
from ._data import CustomerStore
from ._faults import FaultConfig, FaultMiddleware, FaultPlan
from ._ratelimit import RateLimitHeaderStyle, RateLimitMiddleware, TokenBucket
from ._responses import JSONResponse, error_response

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "ShopOptions", "create_shop_app"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_TEXT_FIELDS = ("first_name", "last_name", "phone", "company")
_ADDRESS_FIELDS = ("street", "city", "country")


class ShopOptions(TypedDict, total=False):
    """The keyword options of `create_shop_app` besides `records` and `seed`."""

    token: str | None
    api_key: str | None
    rate_limit: tuple[float, float, int] | None
    rate_limit_headers: RateLimitHeaderStyle
    faults: FaultConfig | None


def _query_int(request: Request, name: str, default: int, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise HTTPException(400, f"{name} must be an integer of at least {minimum}")
    return value


def _validate_customer(body: Any) -> list[dict[str, str]]:
    if not isinstance(body, dict):
        return [{"field": "", "issue": "the body must be a JSON object"}]
    problems: list[dict[str, str]] = []
    email = body.get("email")
    if not isinstance(email, str) or "@" not in email:
        problems.append({"field": "email", "issue": "required, an email address"})
    for name in _TEXT_FIELDS:
        if name in body and not isinstance(body[name], str):
            problems.append({"field": name, "issue": "must be a string"})
    address = body.get("address", {})
    if not isinstance(address, dict) or any(
        not isinstance(address.get(name, ""), str) for name in _ADDRESS_FIELDS
    ):
        problems.append({"field": "address", "issue": "must be an object of strings"})
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        problems.append({"field": "tags", "issue": "must be a list of strings"})
    return problems


class _ShopApi:
    """The state of one shop app and its route handlers."""

    def __init__(
        self,
        store: CustomerStore,
        stats: SandboxStats,
        bucket: TokenBucket | None,
        plan: FaultPlan | None,
    ) -> None:
        self.store = store
        self.stats = stats
        self.bucket = bucket
        self.plan = plan
        # Idempotency-Key -> (request fingerprint, status, body) of the first answer.
        self.idempotent: dict[str, tuple[str, int, bytes]] = {}

    def reset(self) -> None:
        self.store.reset()
        self.stats.reset()
        self.idempotent.clear()
        if self.bucket is not None:
            self.bucket.reset()
        if self.plan is not None:
            self.plan.reset()

    async def list_customers(self, request: Request) -> Response:
        offset = _query_int(request, "offset", 0, minimum=0)
        limit = min(_query_int(request, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
        return JSONResponse(
            {
                "data": self.store.page(offset, limit),
                "total": self.store.total,
                "offset": offset,
                "limit": limit,
            }
        )

    async def get_customer(self, request: Request) -> Response:
        customer_id: int = request.path_params["customer_id"]
        customer = self.store.get(customer_id)
        if customer is None:
            return error_response(404, "not_found", f"No customer with id {customer_id}.")
        return JSONResponse(customer)

    async def create_customer(self, request: Request) -> Response:
        raw = await request.body()
        key = request.headers.get("idempotency-key")
        # No await between the lookup and storing the answer: concurrent retries with the
        # same key cannot both create.
        fingerprint = hashlib.sha256(raw).hexdigest()
        if key is not None and key in self.idempotent:
            stored_fingerprint, status, body = self.idempotent[key]
            if stored_fingerprint != fingerprint:
                return error_response(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with a different request body.",
                )
            self.stats.idempotent_replays += 1
            return Response(
                body,
                status_code=status,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        status, body, headers = self._create(raw)
        if key is not None:
            self.idempotent[key] = (fingerprint, status, body)
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    def _create(self, raw: bytes) -> tuple[int, bytes, Mapping[str, str]]:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            response = error_response(400, "invalid_json", "The body is not valid JSON.")
            return 400, bytes(response.body), {}
        problems = _validate_customer(payload)
        if problems:
            response = error_response(
                422, "validation_error", "The customer is not valid.", details=problems
            )
            return 422, bytes(response.body), {}
        customer = self.store.create(payload)
        self.stats.creates += 1
        return 201, orjson.dumps(customer), {"Location": f"/customers/{customer['id']}"}

    async def echo(self, request: Request) -> Response:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            # Repeated fields combine with ", " (RFC 9110 §5.3).
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "query_items": [list(item) for item in request.query_params.multi_items()],
                "headers": headers,
                "body": body.decode("utf-8", errors="replace"),
            }
        )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {400: "invalid_parameter", 404: "not_found", 405: "method_not_allowed"}
    return error_response(
        exc.status_code,
        codes.get(exc.status_code, "http_error"),
        exc.detail,
        headers=exc.headers,
    )


def create_shop_app(
    *,
    records: int = 1000,
    seed: int = 42,
    token: str | None = None,
    api_key: str | None = None,
    rate_limit: tuple[float, float, int] | None = None,
    rate_limit_headers: RateLimitHeaderStyle = "both",
    faults: FaultConfig | None = None,
) -> Starlette:
    """Build the shop sandbox app, a customers API with `records` deterministic customers.

    Args:
        token: require `Authorization: Bearer <token>`.
        api_key: require the key in `X-API-Key` or the `api_key` query parameter.
        rate_limit: `(rate, per_seconds, burst)` of the token bucket all clients share.
        rate_limit_headers: which rate-limit header families to send.
        faults: how often to fail; see `FaultConfig`.

    ```python
    app = create_shop_app(records=10_000, token="secret", rate_limit=(10, 1, 20))
    with SandboxServer(app) as server:
        httpx.get(f"{server.url}/customers", headers={"Authorization": "Bearer secret"})
    ```
    """
    if rate_limit_headers not in get_args(RateLimitHeaderStyle):
        raise ValueError(f"unknown rate_limit_headers style {rate_limit_headers!r}")
    stats = SandboxStats()
    store = CustomerStore(records=records, seed=seed)
    bucket = TokenBucket(*rate_limit) if rate_limit is not None else None
    plan = FaultPlan(faults) if faults is not None else None
    api = _ShopApi(store, stats, bucket, plan)

    # Outermost first: count, authenticate, spend a token, then maybe misbehave.
    middleware = [Middleware(StatsMiddleware, stats=stats)]
    if token is not None or api_key is not None:
        middleware.append(Middleware(AuthMiddleware, stats=stats, token=token, api_key=api_key))
    if bucket is not None:
        middleware.append(
            Middleware(RateLimitMiddleware, bucket=bucket, stats=stats, style=rate_limit_headers)
        )
    if plan is not None:
        middleware.append(Middleware(FaultMiddleware, plan=plan, stats=stats))

    app = Starlette(
        routes=[
            Route("/customers", api.list_customers, methods=["GET"]),
            Route("/customers", api.create_customer, methods=["POST"]),
            Route("/customers/{customer_id:int}", api.get_customer, methods=["GET"]),
            Route("/echo", api.echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            *admin_routes(stats, api.reset),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
    )
    app.state.stats = stats
    app.state.customers = store
    return app
