"""Small local stand-ins shaped like well-known public APIs, for `interlink init --from`.

Each is a Starlette app over `n` records with the list style of the API it mimics:

- `github_app`: `GET /repos/o/r/issues?page=&per_page=&since=`: a bare list, a `Link`
  header (`next`, `last`, `prev`, `first`), 30 a page by default (at most 100).
- `stripe_app`: `GET /v1/customers?limit=&starting_after=`: `{"object": "list", "data",
  "has_more", "url"}`, string ids (`cus_0001`), 10 a page by default (at most 100).
- `shopify_app`: `GET /admin/api/2024-01/products.json?limit=&updated_at_min=`:
  `{"products": [...]}`, a `Link` header whose `next` carries an opaque `page_info`
  (a request with `page_info` may carry only `limit`, as Shopify's does: 400 otherwise).
- `jsonapi_app`: `GET /api/articles?page[number]=&page[size]=`: JSON:API resource objects,
  `links.next` (absent on the last page), `meta.total`.
- `json_server_app`: `GET /posts?_page=&_limit=`: a bare list, `X-Total-Count`, 10 a page
  when `_page` is not given (a json-server behind a default page size).

And the faulty ones: `repeating_app` (every page is the first, whatever is asked, though
the total says more), `empty_app`, `html_app`, `unauthorized_app`, `single_object_app`.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = [
    "empty_app",
    "github_app",
    "html_app",
    "json_server_app",
    "jsonapi_app",
    "repeating_app",
    "shopify_app",
    "single_object_app",
    "stripe_app",
    "unauthorized_app",
]

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_EASTERN = timezone(timedelta(hours=-5))


def _moment(i: int, n: int) -> datetime:
    # Updated in an order other than the ids', so a filter drops records from every page.
    return _EPOCH + timedelta(hours=(i * 7919) % (n * 3 + 1))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _int(request: Request, name: str, default: int, *, cap: int = 100, floor: int = 1) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    return max(floor, min(int(raw), cap))


def _link(url: str, rel: str) -> str:
    return f'<{url}>; rel="{rel}"'


def _page_links(request: Request, page: int, pages: int, name: str, **extra: Any) -> str:
    def at(number: int) -> str:
        return str(request.url.include_query_params(**{name: number}, **extra))

    links = [_link(at(1), "first")]
    if page > 1:
        links.append(_link(at(page - 1), "prev"))
    if page < pages:
        links.append(_link(at(page + 1), "next"))
    links.append(_link(at(max(pages, 1)), "last"))
    return ", ".join(links)


def github_app(n: int = 95) -> Starlette:
    issues = [
        {
            "id": 1_000_000 + i,
            "node_id": f"I_{i:05d}",
            "number": i,
            "title": f"Issue {i}",
            "state": "open" if i % 3 else "closed",
            "updated_at": _iso(_moment(i, n)),
        }
        for i in range(n, 0, -1)
    ]

    async def list_issues(request: Request) -> Response:
        per_page = _int(request, "per_page", 30)
        page = _int(request, "page", 1, cap=10**6)
        chosen = issues
        since = request.query_params.get("since")
        if since:
            moment = datetime.fromisoformat(since)
            chosen = [i for i in issues if datetime.fromisoformat(i["updated_at"]) >= moment]
        pages = -(-len(chosen) // per_page)
        body = chosen[(page - 1) * per_page : page * per_page]
        headers = {"Link": _page_links(request, page, pages, "page")} if pages > 1 else {}
        return JSONResponse(body, headers=headers)

    return Starlette(routes=[Route("/repos/o/r/issues", list_issues)])


def stripe_app(n: int = 57) -> Starlette:
    customers = [
        {
            "id": f"cus_{i:04d}",
            "object": "customer",
            "email": f"c{i}@example.com",
            "created": 1_767_225_600 + i * 60,
        }
        for i in range(1, n + 1)
    ]

    async def list_customers(request: Request) -> Response:
        limit = _int(request, "limit", 10)
        after = request.query_params.get("starting_after")
        start = 0
        if after:
            ids = [c["id"] for c in customers]
            if after not in ids:
                return JSONResponse({"error": {"message": f"No such customer: '{after}'"}}, 400)
            start = ids.index(after) + 1
        page = customers[start : start + limit]
        return JSONResponse(
            {
                "object": "list",
                "url": "/v1/customers",
                "has_more": start + limit < len(customers),
                "data": page,
            }
        )

    return Starlette(routes=[Route("/v1/customers", list_customers)])


def _page_info(offset: int, since: str | None) -> str:
    return base64.urlsafe_b64encode(f"{offset}|{since or ''}".encode()).decode().rstrip("=")


def _read_page_info(text: str) -> tuple[int, str | None]:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    offset, _, since = raw.partition("|")
    return int(offset), since or None


def shopify_app(n: int = 120) -> Starlette:
    products = [
        {
            "id": 7_000_000_000 + i,
            "title": f"Product {i}",
            "handle": f"product-{i}",
            "updated_at": _moment(i, n).astimezone(_EASTERN).isoformat(),
        }
        for i in range(1, n + 1)
    ]

    async def list_products(request: Request) -> Response:
        query = request.query_params
        limit = _int(request, "limit", 50, cap=250)
        info = query.get("page_info")
        if info:
            if set(query) - {"page_info", "limit"}:
                return JSONResponse({"errors": {"page_info": "only limit may go with it"}}, 400)
            offset, since = _read_page_info(info)
        else:
            offset, since = 0, query.get("updated_at_min")
        chosen = products
        if since:
            moment = datetime.fromisoformat(since)
            chosen = [p for p in products if datetime.fromisoformat(p["updated_at"]) >= moment]
        body = chosen[offset : offset + limit]
        base = str(request.url.replace(query=""))
        links = []
        if offset > 0:
            prev = _page_info(max(offset - limit, 0), since)
            links.append(_link(f"{base}?limit={limit}&page_info={prev}", "previous"))
        if offset + limit < len(chosen):
            following = _page_info(offset + limit, since)
            links.append(_link(f"{base}?limit={limit}&page_info={following}", "next"))
        headers = {"Link": ", ".join(links)} if links else {}
        return JSONResponse({"products": body}, headers=headers)

    return Starlette(routes=[Route("/admin/api/2024-01/products.json", list_products)])


def jsonapi_app(n: int = 44) -> Starlette:
    articles = [
        {
            "type": "articles",
            "id": str(i),
            "attributes": {"title": f"Article {i}", "updatedAt": _iso(_moment(i, n))},
            "relationships": {"author": {"data": {"type": "people", "id": str(i % 5)}}},
        }
        for i in range(1, n + 1)
    ]

    async def list_articles(request: Request) -> Response:
        query = request.query_params
        size = max(1, min(int(query.get("page[size]", "10")), 50))
        number = max(1, int(query.get("page[number]", "1")))
        pages = -(-len(articles) // size)
        base = str(request.url.replace(query=""))

        def at(page: int) -> str:
            return f"{base}?page%5Bnumber%5D={page}&page%5Bsize%5D={size}"

        links = {"self": at(number), "first": at(1), "last": at(pages)}
        if number < pages:
            links["next"] = at(number + 1)
        body = {
            "data": articles[(number - 1) * size : number * size],
            "links": links,
            "meta": {"total": len(articles)},
        }
        return JSONResponse(body, media_type="application/vnd.api+json")

    return Starlette(routes=[Route("/api/articles", list_articles)])


def json_server_app(n: int = 33) -> Starlette:
    posts = [
        {"id": i, "title": f"Post {i}", "author": f"a{i % 4}", "modified": _iso(_moment(i, n))}
        for i in range(1, n + 1)
    ]

    async def list_posts(request: Request) -> Response:
        limit = _int(request, "_limit", 10, cap=10**6)
        page = _int(request, "_page", 1, cap=10**6)
        body = posts[(page - 1) * limit : page * limit]
        return JSONResponse(body, headers={"X-Total-Count": str(len(posts))})

    return Starlette(routes=[Route("/posts", list_posts)])


def epoch_app(n: int = 64) -> Starlette:
    """`GET /events?offset=&limit=&updated_since=`: change times as Unix seconds (numbers),
    `{"data": [...], "total": N}`; `updated_since` keeps records changed at or after it."""
    events = [
        {"id": i, "kind": f"k{i % 3}", "updated": 1_767_225_600 + i * 3600} for i in range(1, n + 1)
    ]

    async def list_events(request: Request) -> Response:
        since = request.query_params.get("updated_since")
        chosen = [e for e in events if since is None or e["updated"] >= float(since)]
        offset = _int(request, "offset", 0, cap=10**6, floor=0)
        limit = _int(request, "limit", 50)
        return JSONResponse({"data": chosen[offset : offset + limit], "total": len(chosen)})

    return Starlette(routes=[Route("/events", list_events)])


def repeating_app(n: int = 50) -> Starlette:
    items = [{"id": i, "name": f"item {i}"} for i in range(1, n + 1)]

    async def list_items(request: Request) -> Response:
        # Ignores every parameter: page 2 is page 1 again, although the total says more.
        return JSONResponse({"data": items[:10], "total": n})

    return Starlette(routes=[Route("/items", list_items)])


def empty_app() -> Starlette:
    async def nothing(request: Request) -> Response:
        return JSONResponse({"data": [], "total": 0})

    return Starlette(routes=[Route("/things", nothing)])


def html_app() -> Starlette:
    async def page(request: Request) -> Response:
        return PlainTextResponse("<html><body>Sign in</body></html>", media_type="text/html")

    return Starlette(routes=[Route("/things", page)])


def unauthorized_app(token: str = "s3cret-token") -> Starlette:
    async def guarded(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse(
                {"message": "Bad credentials"},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )
        return JSONResponse([{"id": 1, "name": "one"}, {"id": 2, "name": "two"}])

    return Starlette(routes=[Route("/things", guarded)])


def single_object_app() -> Starlette:
    async def one(request: Request) -> Response:
        return JSONResponse({"id": 1, "login": "octocat", "name": "The Octocat"})

    return Starlette(routes=[Route("/user", one)])
