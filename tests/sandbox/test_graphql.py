import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from interlink.sandbox._graphql import create_graphql_app
from interlink.sandbox._products import Product, make_product
from interlink.sandbox._server import SandboxServer

Serve = Callable[[ASGIApp], SandboxServer]

PRODUCTS = """
query Products($first: Int, $after: String, $since: String) {
  products(first: $first, after: $after, updatedSince: $since) {
    totalCount
    edges { cursor node { id sku name category price currency stock active updatedAt } }
    pageInfo { hasNextPage endCursor startCursor hasPreviousPage }
  }
}
"""


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Serve an ASGI app on a real local port; stopped after the test."""
    servers: list[SandboxServer] = []

    def start(app: ASGIApp) -> SandboxServer:
        server = SandboxServer(app)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


SIZES = [0, 1, 99, 100, 101, 1007]


@pytest.fixture(scope="module")
def shared() -> Iterator[str]:
    """One real server for the read-only apps of this module, each mounted at its own prefix.

    Returns the server's URL; `/size<N>/` serves N products of seed 7, `/since/` 300 of
    seed 3, `/ten/` 10 of seed 4 and `/auth/` asks for the token "s3cret".
    """
    apps = {f"size{n}": create_graphql_app(records=n, seed=7) for n in SIZES}
    apps["since"] = create_graphql_app(records=300, seed=3)
    apps["ten"] = create_graphql_app(records=10, seed=4)
    apps["auth"] = create_graphql_app(records=3, token="s3cret")
    with SandboxServer(Starlette(routes=[Mount(f"/{k}", v) for k, v in apps.items()])) as server:
        yield server.url


def as_node(product: Product) -> dict[str, Any]:
    return {
        "id": str(product["id"]),
        "sku": product["sku"],
        "name": product["name"],
        "category": product["category"],
        "price": product["price"],
        "currency": product["currency"],
        "stock": product["stock"],
        "active": product["active"],
        "updatedAt": product["updated_at"],
    }


async def walk(client: httpx.AsyncClient, **variables: Any) -> list[dict[str, Any]]:
    """Every page of `products`, following `endCursor` until `hasNextPage` is false."""
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        response = await client.post(
            "/", json={"query": PRODUCTS, "variables": {**variables, "after": after}}
        )
        assert response.status_code == 200
        body = response.json()
        assert "errors" not in body
        pages.append(body["data"]["products"])
        if not pages[-1]["pageInfo"]["hasNextPage"]:
            return pages
        after = pages[-1]["pageInfo"]["endCursor"]


@pytest.mark.parametrize("records", SIZES)
async def test_walking_every_page_yields_each_product_once(shared: str, records: int) -> None:
    async with httpx.AsyncClient(base_url=f"{shared}/size{records}/") as client:
        pages = await walk(client, first=100)

    nodes = [edge["node"] for page in pages for edge in page["edges"]]
    assert nodes == [as_node(make_product(7, n)) for n in range(1, records + 1)]
    assert len(pages) == max(1, -(-records // 100))
    assert {page["totalCount"] for page in pages} == {records}
    for index, page in enumerate(pages):
        info, edges = page["pageInfo"], page["edges"]
        assert info["hasNextPage"] is (index < len(pages) - 1)
        assert info["hasPreviousPage"] is (index > 0)
        assert info["startCursor"] == (edges[0]["cursor"] if edges else None)
        assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)


async def test_updated_since_keeps_the_products_updated_at_or_after_it(shared: str) -> None:
    products = [make_product(3, n) for n in range(1, 301)]
    since = sorted(p["updated_at"] for p in products)[200]  # 100 products are this new or newer
    expected = [as_node(p) for p in products if p["updated_at"] >= since]
    async with httpx.AsyncClient(base_url=f"{shared}/since/") as client:
        pages = await walk(client, first=30, since=since)
        # The same instant with an offset, and without one (taken as UTC).
        local = since.replace("Z", "") + "+00:00"
        again = await walk(client, first=1000, since=local)
        naive = await walk(client, first=1000, since=since.replace("Z", ""))

    assert [edge["node"] for page in pages for edge in page["edges"]] == expected
    assert len(expected) == 100 and len(pages) == 4
    assert {page["totalCount"] for page in pages} == {100}
    assert pages[-1]["pageInfo"]["hasNextPage"] is False
    for other in (again, naive):
        assert [edge["node"] for edge in other[0]["edges"]] == expected


async def test_first_zero_gives_no_edges_and_says_there_is_more(shared: str) -> None:
    async with httpx.AsyncClient(base_url=f"{shared}/ten/") as client:
        response = await client.post("/", json={"query": PRODUCTS, "variables": {"first": 0}})
    page = response.json()["data"]["products"]
    assert page["edges"] == [] and page["totalCount"] == 10
    assert page["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 5000}, "first must be between 0 and 1000, not 5000"),
        ({"first": -1}, "first must be between 0 and 1000, not -1"),
        ({"after": "not a cursor!"}, "invalid cursor 'not a cursor!'"),
        ({"after": cursor_of("product:11")}, "invalid cursor"),
        ({"after": cursor_of("product:x")}, "invalid cursor"),
        ({"after": cursor_of("customer:1")}, "invalid cursor"),
        ({"after": cursor_of("product:0")}, "invalid cursor"),
        ({"after": cursor_of("product:1_0")}, "invalid cursor"),
        ({"after": cursor_of("product:1") + "!!"}, "invalid cursor"),
        ({"after": "/w=="}, "invalid cursor"),
        ({"since": "last tuesday"}, "updatedSince must be an ISO-8601 timestamp"),
    ],
)
async def test_bad_arguments_are_graphql_errors(
    shared: str, variables: dict[str, Any], message: str
) -> None:
    async with httpx.AsyncClient(base_url=f"{shared}/ten/") as client:
        response = await client.post("/", json={"query": PRODUCTS, "variables": variables})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"].startswith(message)
    assert error["path"] == ["products"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}


async def test_product_by_id_or_null(shared: str) -> None:
    query = """{
      found: product(id: "10") { id sku price updatedAt }
      zero: product(id: 0) { id }
      past: product(id: 11) { id }
      word: product(id: "abc") { id }
    }"""
    async with httpx.AsyncClient(base_url=f"{shared}/ten/") as client:
        response = await client.post("/", json={"query": query})
    product = make_product(4, 10)
    assert response.json() == {
        "data": {
            "found": {
                "id": "10",
                "sku": product["sku"],
                "price": product["price"],
                "updatedAt": product["updated_at"],
            },
            "zero": None,
            "past": None,
            "word": None,
        }
    }


async def test_bearer_token_is_checked_before_graphql(shared: str) -> None:
    query = {"query": "{ product(id: 1) { id } }"}
    async with httpx.AsyncClient(base_url=f"{shared}/auth/") as client:
        missing = await client.post("/", json=query)
        wrong = await client.post("/", json=query, headers={"Authorization": "Bearer nope"})
        # Not even a parse error: the request never reaches GraphQL.
        garbage = await client.post("/", content=b"{", headers={"Content-Type": "text/plain"})
        right = await client.post("/", json=query, headers={"Authorization": "Bearer s3cret"})
    for response in (missing, wrong, garbage):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert right.json() == {"data": {"product": {"id": "1"}}}


async def test_post_only_at_the_root_and_at_graphql(serve: Serve) -> None:
    server = serve(create_graphql_app(records=3))
    query = {"query": "{ products { totalCount } }"}
    async with httpx.AsyncClient(base_url=server.url) as client:
        at_root = await client.post("/", json=query)
        at_graphql = await client.post("/graphql", json=query)
        get = await client.get("/", params=query)
        elsewhere = await client.post("/other", json=query)
    assert at_root.json() == at_graphql.json() == {"data": {"products": {"totalCount": 3}}}
    # GET is refused rather than served: there is no GraphiQL page and no GET queries.
    assert get.status_code == 405
    assert get.headers["allow"] == "POST"
    assert get.json()["error"]["code"] == "method_not_allowed"
    assert elsewhere.status_code == 404


async def test_served_under_a_mount_prefix(serve: Serve) -> None:
    app = create_graphql_app(records=150, seed=7)
    outer = Starlette(routes=[Route("/graphql", app), Mount("/graphql", app)])
    server = serve(outer)
    async with httpx.AsyncClient(base_url=f"{server.url}/graphql") as client:
        pages = await walk(client, first=100)
        exact = await client.post(
            server.url + "/graphql", json={"query": "{ product(id: 1) { id } }"}
        )
    assert [int(edge["node"]["id"]) for page in pages for edge in page["edges"]] == list(
        range(1, 151)
    )
    assert exact.json() == {"data": {"product": {"id": "1"}}}


async def test_a_bare_mount_redirects_the_exact_prefix(serve: Serve) -> None:
    # Starlette's Mount("/graphql") matches "/graphql/..." only: "POST /graphql" gets a 307 to
    # "/graphql/". Mount it with Route("/graphql", app) as well to answer the exact path.
    server = serve(Starlette(routes=[Mount("/graphql", create_graphql_app(records=2))]))
    query = {"query": "{ products { totalCount } }"}
    async with httpx.AsyncClient(base_url=server.url) as client:
        redirected = await client.post("/graphql", json=query)
        followed = await client.post("/graphql", json=query, follow_redirects=True)
    assert redirected.status_code == 307
    assert redirected.headers["location"] == f"{server.url}/graphql/"
    assert followed.json() == {"data": {"products": {"totalCount": 2}}}
