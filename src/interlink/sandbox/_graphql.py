"""The GraphQL sandbox: a products API with Relay cursor pagination, served by strawberry.

```graphql
type Query {
  products(first: Int = 100, after: String, updatedSince: String): ProductConnection!
  product(id: ID!): Product
}
```

- `first` must be 0..1000; `after` is an opaque cursor from `edges.cursor` or
  `pageInfo.endCursor`; `updatedSince` (ISO-8601, UTC when it has no offset) keeps the
  products with `updatedAt >= updatedSince`. A bad argument is a GraphQL error: HTTP 200
  with `{"data": null, "errors": [{"message", "locations", "path": ["products"],
  "extensions": {"code": "BAD_USER_INPUT"}}]}`.
- `hasPreviousPage` is true when matching products come before `after`; `totalCount`
  counts the matching products on all pages.
- Products are those of `_products.make_product`, ids 1..records, computed page by page.
  `id` is an ID (a JSON string), `price` a decimal string ("19.90") and `updatedAt` the
  same ISO-8601 string as in REST.
- The endpoint is the app root, `POST /`, and `POST /graphql` inside the app as well:
  `Mount("/graphql", app)` serves `POST /graphql/` (Starlette redirects `/graphql` there
  with a 307) and `Route("/graphql", app)` serves `POST /graphql` itself. Queries come by
  POST only; GET answers 405, as there is no GraphiQL page (it loads scripts from a CDN).
- With a `token`, requests need `Authorization: Bearer <token>` and are checked before any
  GraphQL parsing; otherwise 401 `{"error": {"code": "unauthorized", ...}}`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import strawberry
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.types import ExecutionContext

from ._admin import SandboxStats, StatsMiddleware
from ._auth import AuthMiddleware
from ._products import Product, make_product
from ._responses import error_response

__all__ = ["DEFAULT_FIRST", "MAX_FIRST", "create_graphql_app"]

DEFAULT_FIRST = 100
MAX_FIRST = 1000

_CURSOR = re.compile(r"product:([1-9][0-9]{0,17})")
_logger = logging.getLogger("strawberry.execution")


def _encode_cursor(product_id: int) -> str:
    return base64.urlsafe_b64encode(f"product:{product_id}".encode()).decode()


def _bad_input(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


@dataclass(frozen=True, slots=True)
class _Catalog:
    """The products of one app; nothing is stored, each page is computed again."""

    records: int
    seed: int

    def get(self, product_id: int) -> Product | None:
        return make_product(self.seed, product_id) if 1 <= product_id <= self.records else None

    def scan(
        self, since: datetime | None, start: int = 1, stop: int | None = None
    ) -> Iterator[Product]:
        """Yield the products with ids in `start..stop-1` updated at or after `since`."""
        for product_id in range(start, self.records + 1 if stop is None else stop):
            product = make_product(self.seed, product_id)
            if since is None or datetime.fromisoformat(product["updated_at"]) >= since:
                yield product

    def decode_cursor(self, cursor: str) -> int:
        try:
            text = base64.b64decode(cursor, altchars=b"-_", validate=True).decode("ascii")
        except (ValueError, binascii.Error):  # UnicodeError is a ValueError
            text = ""
        match = _CURSOR.fullmatch(text)
        if match is None or int(match[1]) > self.records:
            raise _bad_input(f"invalid cursor {cursor!r}")
        return int(match[1])


def _parse_since(value: str) -> datetime:
    try:
        since = datetime.fromisoformat(value)
    except ValueError as error:
        example = "2023-01-31T00:00:00Z"
        message = f"updatedSince must be an ISO-8601 timestamp such as {example}, not {value!r}"
        raise _bad_input(message) from error
    return since if since.tzinfo is not None else since.replace(tzinfo=UTC)


@strawberry.type(name="Product")
class ProductNode:
    """One product; `from_product` builds it from a `_products.Product`."""

    id: strawberry.ID
    sku: str
    name: str
    category: str
    price: str = strawberry.field(description='A decimal string with two places, e.g. "19.90".')
    currency: str
    stock: int
    active: bool
    updated_at: str = strawberry.field(description="ISO-8601 in UTC, e.g. 2023-04-01T09:30:00Z.")

    @classmethod
    def from_product(cls, product: Product) -> ProductNode:
        return cls(
            id=strawberry.ID(str(product["id"])),
            sku=product["sku"],
            name=product["name"],
            category=product["category"],
            price=product["price"],
            currency=product["currency"],
            stock=product["stock"],
            active=product["active"],
            updated_at=product["updated_at"],
        )


@strawberry.type
class ProductEdge:
    """A product and the cursor that continues after it."""

    cursor: str
    node: ProductNode


@strawberry.type
class PageInfo:
    """Where a page sits, as the Relay connection specification defines it."""

    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class ProductConnection:
    """One page of products, with the filter it was read with."""

    edges: list[ProductEdge]
    page_info: PageInfo
    catalog: strawberry.Private[_Catalog]
    since: strawberry.Private[datetime | None]

    @strawberry.field
    def total_count(self) -> int:
        # All the products matching the filter, on every page. A resolver, so that it is
        # computed only when asked for: with a filter it means scanning every product.
        if self.since is None:
            return self.catalog.records
        return sum(1 for _ in self.catalog.scan(self.since))


@strawberry.type
class Query:
    """The root query type; the products come from the app's `_Catalog` context."""

    @strawberry.field
    def products(
        self,
        info: strawberry.Info[_Catalog, None],
        first: int | None = DEFAULT_FIRST,
        after: str | None = None,
        updated_since: str | None = None,
    ) -> ProductConnection:
        catalog = info.context
        if first is None:
            first = DEFAULT_FIRST
        if not 0 <= first <= MAX_FIRST:
            raise _bad_input(f"first must be between 0 and {MAX_FIRST}, not {first}")
        after_id = catalog.decode_cursor(after) if after is not None else 0
        since = _parse_since(updated_since) if updated_since is not None else None
        # One product more than asked tells whether there is a next page.
        found = list(itertools.islice(catalog.scan(since, start=after_id + 1), first + 1))
        edges = [
            ProductEdge(cursor=_encode_cursor(p["id"]), node=ProductNode.from_product(p))
            for p in found[:first]
        ]
        has_previous = next(catalog.scan(since, stop=after_id + 1), None) is not None
        return ProductConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(found) > first,
                has_previous_page=has_previous,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            catalog=catalog,
            since=since,
        )

    @strawberry.field
    def product(
        self, info: strawberry.Info[_Catalog, None], id: strawberry.ID
    ) -> ProductNode | None:
        try:
            product_id = int(id)
        except ValueError:
            return None
        product = info.context.get(product_id)
        return ProductNode.from_product(product) if product is not None else None


class _ProductSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Client mistakes are answered in "errors"; only a bug in a resolver is worth a log.
        for error in errors:
            original = error.original_error
            if original is not None and not isinstance(original, GraphQLError):
                _logger.error(error, exc_info=original)


_SCHEMA = _ProductSchema(query=Query)


class _ProductGraphQL(GraphQL[_Catalog, None]):
    def __init__(self, catalog: _Catalog) -> None:
        super().__init__(_SCHEMA, graphql_ide=None, allow_queries_via_get=False)
        self.catalog = catalog

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> _Catalog:
        return self.catalog


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    return error_response(
        exc.status_code, codes.get(exc.status_code, "http_error"), exc.detail, headers=exc.headers
    )


def create_graphql_app(
    *, records: int = 1000, seed: int = 42, token: str | None = None
) -> Starlette:
    """Build the GraphQL sandbox app, serving `records` deterministic products.

    ```python
    with SandboxServer(create_graphql_app(records=250, token="secret")) as server:
        httpx.post(
            server.url,
            json={"query": "{ products(first: 10) { edges { node { id sku } } } }"},
            headers={"Authorization": "Bearer secret"},
        )
    ```
    """
    if records < 0:
        raise ValueError("records must not be negative")
    graphql = _ProductGraphQL(_Catalog(records=records, seed=seed))
    stats = SandboxStats()
    middleware = [Middleware(StatsMiddleware, stats=stats)]
    if token is not None:
        middleware.append(Middleware(AuthMiddleware, stats=stats, token=token))
    app = Starlette(
        routes=[
            Route("/", graphql, methods=["POST"]),
            Route("/graphql", graphql, methods=["POST"]),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
    )
    app.state.stats = stats
    return app
