"""The "shop" sandbox: customers, products and orders behind auth, limits and faults.

Every list is sorted by id and accepts `updated_since` (see `_pagination`: ISO-8601,
keeps records with `updated_at >= updated_since`); page sizes default to 100 and are
capped at 1000. Totals count the filtered records. The same customers are offered in
each pagination style a connector must support:

- `GET /customers?offset=&limit=` -> `{"data": [...], "total", "offset", "limit"}`.
- `GET /customers/pages?page=&per_page=` (pages from 1) ->
  `{"customers": [...], "page", "per_page", "total", "total_pages"}`.
- `GET /customers/cursor?cursor=&limit=` -> `{"data": [...], "next_cursor": str | null}`;
  the cursor is opaque, carries the filter, and an invalid one is a 400. With a cursor,
  an `updated_since` other than the cursor's is a 400.
- `GET /customers/link?page=&per_page=` -> a bare JSON array, with an RFC 8288 `Link`
  header of absolute URLs (`rel="first"`, `"prev"` after page 1, `"next"` unless this is
  the last page, `"last"`) and `X-Total-Count`.
- `GET /customers/next-url?offset=&limit=` ->
  `{"results": [...], "count", "next": absolute URL | null, "previous": URL | null}`.
- `GET /customers/wrapped?offset=&limit=[&fail_at=K]` ->
  `{"status": "success", "data": {"customers": [...], "total"}}`; with `fail_at`, a
  request with `offset >= K` gets the error envelope below, still with HTTP 200.
- `GET /customers/error-envelope` -> 200 with
  `{"status": "error", "message": "Customer export is temporarily disabled"}`.

Single customers and changes:

- `GET /customers/{id}` -> the customer, or 404.
- `POST /customers` creates (201 and `Location: /customers/{id}`, an absolute path that
  includes any mount prefix); `Idempotency-Key` makes a retry replay
  the stored answer with `Idempotent-Replayed: true` instead of creating twice.
- `PATCH /customers/{id}` with a JSON object of fields (`email`, `first_name`,
  `last_name`, `phone`, `company`, `address` merged field by field, `tags`) -> the
  changed customer with `updated_at` set to now; 404, 400 (not JSON) or 422 (bad or
  read-only fields).

Products and orders:

- `GET /products?offset=&limit=` -> `{"data", "total", "offset", "limit"}`;
  `GET /products/{id}`.
- `GET /orders?offset=&limit=` -> `{"data", "total", "offset", "limit"}` of every order;
  `GET /orders/{id}`.
- `GET /customers/{id}/orders?page=&per_page=` ->
  `{"orders": [...], "page", "per_page", "total", "total_pages"}`; 404 for an unknown
  customer. Order fields: `id`, `customer_id`, `number`, `status`, `total`, `currency`,
  `items` (`product_id`, `sku`, `quantity`, `price`), `created_at`, `updated_at`.

Without auth, limits, faults or counting:

- `GET /_stats`, `POST /_reset` (all changes and counters are forgotten).
- `POST /_touch` with `{"resource": "customers" | "products" | "orders", "ids": [...]}`
  sets `updated_at` of those records to now, as a change made in the third party's own UI
  would; an unknown id is a 404 and changes nothing.
- `GET /echo` (any method) answers the request's method, path, query and headers (this
  one is counted and limited like the API).

Webhooks: given a target (`webhooks=` or `POST /_webhooks`), the shop posts a signed
event for every record a create, a PATCH or a `/_touch` changed (`_webhooks`); `GET
/_webhooks` shows the target (never its secret) and the delivery counters.

With `cache_pages=True` the list endpoints (customers in every style, products, orders)
answer from a cache of rendered pages that any change of a record empties (`_cache`);
`/_stats` then lists its `page_cache` hits and misses. Benchmarks use it so that the
server's cost of computing records does not hide the client's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypedDict, get_args

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._admin import SandboxStats, StatsMiddleware, admin_routes, touch_response
from ._auth import AuthMiddleware
from ._cache import PageCache
from ._data import CustomerStore
from ._faults import FaultConfig, FaultMiddleware, FaultPlan
from ._idempotency import IdempotencyKeyReusedError, IdempotencyStore
from ._orders import OrderStore
from ._pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    page_size,
    query_int,
    since_param,
)
from ._ratelimit import RateLimitHeaderStyle, RateLimitMiddleware, TokenBucket
from ._responses import JSONResponse, error_response
from ._shop_lists import CustomerLists, numbered_page, offset_page
from ._store import BaseRecordStore, ProductStore
from ._webhook_signing import WebhookTarget
from ._webhooks import WebhookSender, webhook_routes

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "ShopOptions", "create_shop_app"]

_TEXT_FIELDS = ("first_name", "last_name", "phone", "company")
_ADDRESS_FIELDS = ("street", "city", "country")
_WRITABLE = {"email", "address", "tags", *_TEXT_FIELDS}
_READ_ONLY = {"id", "created_at", "updated_at"}


class ShopOptions(TypedDict, total=False):
    """The keyword options of `create_shop_app` besides `records` and `seed`."""

    products: int | None
    token: str | None
    api_key: str | None
    rate_limit: tuple[float, float, int] | None
    rate_limit_headers: RateLimitHeaderStyle
    faults: FaultConfig | None
    cache_pages: bool
    webhooks: WebhookTarget | WebhookSender | None


Handler = Callable[[Request], Awaitable[Response]]


# The event name of each resource's records ("customer.updated").
_KINDS = {"customers": "customer", "products": "product", "orders": "order"}


# What a cached list answer depends on. The offset and page-number lists depend only on
# their parameters, so `?limit=10&offset=20` and `?offset=20&limit=10` share a page (and a
# bad parameter is the same 400 as without the cache). The others build links from the
# request's own URL or read more parameters, so their key is the whole URL.
def _offset_key(request: Request) -> Hashable:
    offset = query_int(request, "offset", 0, minimum=0)
    return offset, page_size(request, "limit"), since_param(request)


def _numbered_key(request: Request) -> Hashable:
    page = query_int(request, "page", 1, minimum=1)
    return page, page_size(request, "per_page"), since_param(request)


def _url_key(request: Request) -> Hashable:
    return str(request.url)


def _validate_customer(body: Any, *, partial: bool = False) -> list[dict[str, str]]:
    if not isinstance(body, dict):
        return [{"field": "", "issue": "the body must be a JSON object"}]
    problems: list[dict[str, str]] = []
    if partial:
        for name in sorted(set(body) - _WRITABLE):
            issue = "read-only" if name in _READ_ONLY else "unknown field"
            problems.append({"field": name, "issue": issue})
    email = body.get("email")
    if (not partial or "email" in body) and (not isinstance(email, str) or "@" not in email):
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
        customers: CustomerStore,
        products: ProductStore,
        orders: OrderStore,
        stats: SandboxStats,
        bucket: TokenBucket | None,
        plan: FaultPlan | None,
        cache: PageCache | None = None,
        webhooks: WebhookSender | None = None,
    ) -> None:
        self.customers = customers
        self.products = products
        self.orders = orders
        self.stats = stats
        self.bucket = bucket
        self.plan = plan
        self.cache = cache
        self.webhooks = webhooks if webhooks is not None else WebhookSender()
        self.lists = CustomerLists(customers)
        self.idempotent = IdempotencyStore()
        self.resources: Mapping[str, BaseRecordStore[Any]] = {
            "customers": customers,
            "products": products,
            "orders": orders,
        }

    def reset(self) -> None:
        for store in self.resources.values():
            store.reset()
        self.stats.reset()
        self.webhooks.reset()
        self.idempotent.clear()
        if self.bucket is not None:
            self.bucket.reset()
        if self.plan is not None:
            self.plan.reset()

    def cached(
        self, name: str, handler: Handler, key: Callable[[Request], Hashable] = _url_key
    ) -> Handler:
        """`handler`, answering from the page cache when the app has one."""
        cache = self.cache
        if cache is None:
            return handler

        async def serve(request: Request) -> Response:
            return await cache.answer((name, key(request)), lambda: handler(request))

        return serve

    # -- lists: offset / limit (the customers' other styles are in _shop_lists.py) -----

    async def list_customers(self, request: Request) -> Response:
        return JSONResponse(offset_page(request, self.customers))

    async def list_products(self, request: Request) -> Response:
        return JSONResponse(offset_page(request, self.products))

    async def list_orders(self, request: Request) -> Response:
        return JSONResponse(offset_page(request, self.orders))

    # -- single customers ---------------------------------------------------------------

    async def get_customer(self, request: Request) -> Response:
        customer_id: int = request.path_params["customer_id"]
        customer = self.customers.get(customer_id)
        if customer is None:
            return error_response(404, "not_found", f"No customer with id {customer_id}.")
        return JSONResponse(customer)

    async def create_customer(self, request: Request) -> Response:
        raw = await request.body()
        key = request.headers.get("idempotency-key")
        # No await between the lookup and storing the answer: concurrent retries with the
        # same key cannot both create.
        if key is not None:
            try:
                stored = self.idempotent.find(key, raw)
            except IdempotencyKeyReusedError:
                return error_response(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with a different request body.",
                )
            if stored is not None:
                self.stats.idempotent_replays += 1
                return stored.replay()
        response, headers = self._create(raw, request.url.path)
        if key is not None:
            self.idempotent.remember(key, raw, response, headers)
        return response

    def _create(self, raw: bytes, path: str) -> tuple[Response, dict[str, str]]:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return error_response(400, "invalid_json", "The body is not valid JSON."), {}
        problems = _validate_customer(payload)
        if problems:
            response = error_response(
                422, "validation_error", "The customer is not valid.", details=problems
            )
            return response, {}
        customer = self.customers.create(payload)
        self.stats.creates += 1
        self.webhooks.record_changed("customer", "created", customer)
        # The path of the request keeps a mount prefix: /shop/customers/11 in the suite.
        headers = {"Location": f"{path.rstrip('/')}/{customer['id']}"}
        return JSONResponse(customer, status_code=201, headers=headers), headers

    async def patch_customer(self, request: Request) -> Response:
        customer_id: int = request.path_params["customer_id"]
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return error_response(400, "invalid_json", "The body is not valid JSON.")
        if self.customers.get(customer_id) is None:
            return error_response(404, "not_found", f"No customer with id {customer_id}.")
        problems = _validate_customer(payload, partial=True)
        if problems:
            return error_response(
                422, "validation_error", "The changes are not valid.", details=problems
            )
        customer = self.customers.update(customer_id, payload)
        self.stats.updates += 1
        if customer is not None:  # None only if it vanished since the check above
            self.webhooks.record_changed("customer", "updated", customer)
        return JSONResponse(customer)

    async def customer_orders(self, request: Request) -> Response:
        customer_id: int = request.path_params["customer_id"]
        if self.customers.get(customer_id) is None:
            return error_response(404, "not_found", f"No customer with id {customer_id}.")
        since = since_param(request)
        orders = self.orders.of_customer(customer_id, since)
        page, per_page, _, total, pages = numbered_page(request, lambda _: len(orders))
        start = (page - 1) * per_page
        return JSONResponse(
            {
                "orders": orders[start : start + per_page],
                "page": page,
                "per_page": per_page,
                "total": total,
                "total_pages": pages,
            }
        )

    # -- single products and orders -----------------------------------------------------

    async def get_product(self, request: Request) -> Response:
        product_id: int = request.path_params["product_id"]
        product = self.products.get(product_id)
        if product is None:
            return error_response(404, "not_found", f"No product with id {product_id}.")
        return JSONResponse(product)

    async def get_order(self, request: Request) -> Response:
        order_id: int = request.path_params["order_id"]
        order = self.orders.get(order_id)
        if order is None:
            return error_response(404, "not_found", f"No order with id {order_id}.")
        return JSONResponse(order)

    # -- admin and diagnostics ----------------------------------------------------------

    async def touch(self, request: Request) -> Response:
        return touch_response(await request.body(), self.resources, self._touched)

    def _touched(self, resource: str, records: list[Any]) -> None:
        for record in records:
            self.webhooks.record_changed(_KINDS[resource], "updated", record)

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
    products: int | None = None,
    token: str | None = None,
    api_key: str | None = None,
    rate_limit: tuple[float, float, int] | None = None,
    rate_limit_headers: RateLimitHeaderStyle = "both",
    faults: FaultConfig | None = None,
    cache_pages: bool = False,
    webhooks: WebhookTarget | WebhookSender | None = None,
) -> Starlette:
    """Build the shop sandbox app: `records` customers, their orders, and products.

    Args:
        products: how many products (default: as many as `records`).
        token: require `Authorization: Bearer <token>`.
        api_key: require the key in `X-API-Key` or the `api_key` query parameter.
        rate_limit: `(rate, per_seconds, burst)` of the token bucket all clients share.
        rate_limit_headers: which rate-limit header families to send.
        faults: how often to fail; see `FaultConfig`.
        cache_pages: render each list page once and serve its bytes again until a record
            changes (see `_cache`), for benchmarks that should measure the client, not
            the server. Auth, limits, faults and counters still apply to every request.
        webhooks: where to post a signed event for each changed record (a target, or a
            `WebhookSender` with its own retry and queue settings); `POST /_webhooks` can
            set or change it later. The app's lifespan shutdown flushes pending deliveries.

    ```python
    app = create_shop_app(records=10_000, token="secret", rate_limit=(10, 1, 20))
    with SandboxServer(app) as server:
        httpx.get(f"{server.url}/customers", headers={"Authorization": "Bearer secret"})
    ```
    """
    if rate_limit_headers not in get_args(RateLimitHeaderStyle):
        raise ValueError(f"unknown rate_limit_headers style {rate_limit_headers!r}")
    product_count = records if products is None else products
    stats = SandboxStats()
    customers = CustomerStore(records=records, seed=seed)
    product_store = ProductStore(count=product_count, seed=seed)
    orders = OrderStore(customers=records, products=product_count, seed=seed)
    bucket = TokenBucket(*rate_limit) if rate_limit is not None else None
    plan = FaultPlan(faults) if faults is not None else None
    cache = PageCache([customers, product_store, orders]) if cache_pages else None
    stats.page_cache = cache
    sender = webhooks if isinstance(webhooks, WebhookSender) else WebhookSender(webhooks)
    api = _ShopApi(customers, product_store, orders, stats, bucket, plan, cache, sender)
    cached = api.cached

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
            Route(
                "/customers", cached("customers", api.list_customers, _offset_key), methods=["GET"]
            ),
            Route("/customers", api.create_customer, methods=["POST"]),
            Route(
                "/customers/pages",
                cached("pages", api.lists.customers_pages, _numbered_key),
                methods=["GET"],
            ),
            Route(
                "/customers/cursor", cached("cursor", api.lists.customers_cursor), methods=["GET"]
            ),
            Route("/customers/link", cached("link", api.lists.customers_link), methods=["GET"]),
            Route(
                "/customers/next-url",
                cached("next-url", api.lists.customers_next_url),
                methods=["GET"],
            ),
            Route(
                "/customers/wrapped",
                cached("wrapped", api.lists.customers_wrapped),
                methods=["GET"],
            ),
            Route("/customers/error-envelope", api.lists.customers_error_envelope, methods=["GET"]),
            Route("/customers/{customer_id:int}", api.get_customer, methods=["GET"]),
            Route("/customers/{customer_id:int}", api.patch_customer, methods=["PATCH"]),
            Route("/customers/{customer_id:int}/orders", api.customer_orders, methods=["GET"]),
            Route("/products", cached("products", api.list_products, _offset_key), methods=["GET"]),
            Route("/products/{product_id:int}", api.get_product, methods=["GET"]),
            Route("/orders", cached("orders", api.list_orders, _offset_key), methods=["GET"]),
            Route("/orders/{order_id:int}", api.get_order, methods=["GET"]),
            Route("/echo", api.echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            *admin_routes(stats, api.reset, api.touch),
            *webhook_routes(sender),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=_closing(sender),
    )
    app.state.stats = stats
    app.state.customers = customers
    app.state.products = product_store
    app.state.orders = orders
    app.state.page_cache = cache
    app.state.webhooks = sender
    return app


def _closing(sender: WebhookSender) -> Callable[[Starlette], Any]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # Mounted in the suite, this does not run: the suite's own lifespan closes it.
        await sender.aclose()

    return lifespan
