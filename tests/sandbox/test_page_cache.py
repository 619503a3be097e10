"""`cache_pages=True`: list pages rendered once, the same answers, emptied by every change."""

from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from typer.testing import CliRunner

from interlink.cli.main import app as cli
from interlink.sandbox import (
    CustomerStore,
    FaultConfig,
    SandboxServer,
    create_sandbox_app,
    create_shop_app,
    run_sandbox,
)
from interlink.sandbox._cache import PageCache
from interlink.sandbox._responses import JSONResponse
from interlink.sandbox._store import now_timestamp

from .conftest import AppClient
from .readers import CUSTOMER_READERS

# One request of every cached list, with and without filters, past the end, and a bad one.
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("/customers", {}),
    ("/customers", {"offset": 40, "limit": 20}),
    ("/customers", {"offset": 1000}),
    ("/customers", {"updated_since": "2023-06-01T00:00:00Z", "limit": 7}),
    ("/customers/pages", {"page": 3, "per_page": 11}),
    ("/customers/cursor", {"limit": 9}),
    ("/customers/cursor", {"cursor": "not-a-cursor"}),
    ("/customers/link", {"page": 2, "per_page": 30}),
    ("/customers/next-url", {"offset": 30, "limit": 30}),
    ("/customers/wrapped", {"offset": 60, "limit": 30, "fail_at": 60}),
    ("/customers/wrapped", {"offset": 0, "limit": 30}),
    ("/products", {"offset": 5, "limit": 5}),
    ("/orders", {"limit": 50}),
]


def _answer(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    return response.status_code, response.content, dict(response.headers)


def _cache(app: Starlette) -> PageCache:
    cache = app.state.page_cache
    assert isinstance(cache, PageCache)
    return cache


async def test_cached_answers_are_byte_for_byte_the_uncached_ones(app_client: AppClient) -> None:
    cached_app = create_shop_app(records=120, seed=4, cache_pages=True)
    plain = app_client(create_shop_app(records=120, seed=4))
    cached = app_client(cached_app)
    for path, params in REQUESTS:
        expected = _answer(await plain.get(path, params=params))
        assert _answer(await cached.get(path, params=params)) == expected, (path, params)
        assert _answer(await cached.get(path, params=params)) == expected, (path, params)
    cache = _cache(cached_app)
    # The bad cursor (400) is answered again each time, never kept.
    assert (cache.misses, cache.hits) == (len(REQUESTS) + 1, len(REQUESTS) - 1)
    assert cache.size == sum(len(page.body) for page in cache._pages.values())


async def test_without_the_flag_nothing_is_cached(app_client: AppClient) -> None:
    app = create_shop_app(records=10)
    client = app_client(app)
    await client.get("/customers")
    assert app.state.page_cache is None
    assert "page_cache" not in (await client.get("/_stats")).json()


async def test_one_page_in_two_spellings_is_rendered_once(app_client: AppClient) -> None:
    app = create_shop_app(records=100, cache_pages=True)
    client = app_client(app)
    first = await client.get("/customers?offset=20&limit=10")
    second = await client.get("/customers?limit=10&offset=20&unknown=1")
    assert first.content == second.content
    stats = (await client.get("/_stats")).json()
    assert stats["page_cache"] == {"hits": 1, "misses": 1, "pages": 1, "bytes": len(first.content)}
    # A bad parameter is the same 400 as without the cache.
    bad = await client.get("/customers", params={"offset": -1})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize("style", sorted(CUSTOMER_READERS))
async def test_every_change_shows_up_in_cached_lists(app_client: AppClient, style: str) -> None:
    app = create_shop_app(records=250, seed=6, cache_pages=True)
    client = app_client(app)
    read = CUSTOMER_READERS[style]
    since = {"updated_since": now_timestamp()}
    everyone = list(range(1, 251))
    for _ in range(2):  # the second time from the cache
        assert (await read(client, {}))[0] == everyone
        assert (await read(client, since))[0] == []
    assert _cache(app).hits > 0

    assert (await client.patch("/customers/200", json={"company": "New Co"})).status_code == 200
    assert (await read(client, since))[0] == [200]
    touched = await client.post("/_touch", json={"resource": "customers", "ids": [7]})
    assert touched.status_code == 200
    assert (await read(client, since))[0] == [7, 200]
    created = (await client.post("/customers", json={"email": "new@example.com"})).json()
    assert (await read(client, since))[0] == [7, 200, created["id"]]
    assert (await read(client, {}))[0] == [*everyone, created["id"]]

    assert (await client.post("/_reset")).status_code == 200
    assert (await read(client, since))[0] == []
    assert (await read(client, {}))[0] == everyone


async def test_a_cached_page_shows_the_changed_record(app_client: AppClient) -> None:
    app = create_shop_app(records=30, seed=2, cache_pages=True)
    client = app_client(app)
    page = {"offset": 0, "limit": 30}
    before = (await client.get("/customers", params=page)).json()["data"]
    assert (await client.get("/customers", params=page)).json()["data"] == before
    changed = (await client.patch("/customers/3", json={"first_name": "Zed"})).json()
    after = (await client.get("/customers", params=page)).json()["data"]
    assert after == [*before[:2], changed, *before[3:]]
    assert changed["first_name"] == "Zed"


@pytest.mark.parametrize("resource", ["products", "orders"])
async def test_touching_products_and_orders_empties_their_pages(
    app_client: AppClient, resource: str
) -> None:
    app = create_shop_app(records=40, seed=6, cache_pages=True)
    client = app_client(app)
    path, since = f"/{resource}", {"updated_since": now_timestamp()}
    assert (await client.get(path, params=since)).json()["total"] == 0
    assert (await client.get(path, params=since)).json()["total"] == 0
    record_id = (await client.get(path, params={"limit": 1})).json()["data"][0]["id"]
    await client.post("/_touch", json={"resource": resource, "ids": [record_id]})
    page = (await client.get(path, params=since)).json()
    assert [record["id"] for record in page["data"]] == [record_id]


async def test_failed_changes_and_reads_keep_the_cache(app_client: AppClient) -> None:
    app = create_shop_app(records=20, cache_pages=True)
    client = app_client(app)
    await client.get("/customers")
    await client.get("/customers/5")
    await client.patch("/customers/6", json={"email": "bad"})
    await client.post("/_touch", json={"resource": "customers", "ids": [99]})
    await client.get("/customers")
    cache = _cache(app)
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)


async def test_auth_limits_faults_and_counters_apply_to_cached_pages(
    app_client: AppClient,
) -> None:
    app = create_shop_app(records=20, token="t", rate_limit=(1, 60, 3), cache_pages=True)
    client = app_client(app)
    auth = {"Authorization": "Bearer t"}
    assert (await client.get("/customers", headers=auth)).status_code == 200
    assert (await client.get("/customers")).status_code == 401
    assert (await client.get("/customers", headers=auth)).status_code == 200
    assert (await client.get("/customers", headers=auth)).status_code == 200
    assert (await client.get("/customers", headers=auth)).status_code == 429
    stats = (await client.get("/_stats")).json()
    assert (stats["requests"], stats["unauthorized"], stats["rate_limited"]) == (5, 1, 1)
    assert stats["page_cache"]["hits"] == 2

    # The same seeded faults meet the same requests, cached or not.
    faults = FaultConfig(server_error_rate=0.3, unavailable_rate=0.2, seed=5)
    statuses: list[list[int]] = []
    for cache_pages in (False, True):
        faulty = app_client(create_shop_app(records=20, faults=faults, cache_pages=cache_pages))
        statuses.append([(await faulty.get("/customers")).status_code for _ in range(20)])
    assert statuses[0] == statuses[1]
    assert {200, 500, 503} <= set(statuses[1])


async def test_reset_zeroes_the_cache_counters(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=20, cache_pages=True))
    await client.get("/customers")
    await client.get("/customers")
    await client.post("/_reset")
    stats = (await client.get("/_stats")).json()
    assert stats["page_cache"] == {
        "hits": 0,
        "misses": 0,
        "pages": 1,
        "bytes": stats["page_cache"]["bytes"],
    }
    await client.get("/customers")  # the reset changed the store: rendered again
    assert (await client.get("/_stats")).json()["page_cache"]["misses"] == 1


async def test_the_least_recently_served_pages_go_first() -> None:
    store = CustomerStore(records=0, seed=1)
    cache = PageCache([store], max_bytes=25)

    def render(body: bytes) -> Any:
        async def make() -> Response:
            return Response(body)

        return make

    for key in ("a", "b"):
        await cache.answer(key, render(b"x" * 10))
    await cache.answer("a", render(b""))  # a is served again: b is now the oldest
    await cache.answer("c", render(b"x" * 10))
    assert list(cache._pages) == ["a", "c"] and cache.size == 20
    await cache.answer("big", render(b"x" * 26))  # larger than the whole cache: not kept
    assert list(cache._pages) == ["a", "c"]
    with pytest.raises(ValueError):
        PageCache([store], max_bytes=-1)


async def test_a_page_rendered_while_a_record_changed_is_not_kept() -> None:
    store = CustomerStore(records=5, seed=1)
    cache = PageCache([store])

    async def render_during_a_change() -> Response:
        store.touch([1])
        return JSONResponse({"data": []})

    await cache.answer("page", render_during_a_change)
    assert len(cache) == 0


async def test_the_suite_caches_the_shop_under_its_prefix(app_client: AppClient) -> None:
    app = create_sandbox_app(records=250, cache_pages=True)
    client = app_client(app)
    auth = {"Authorization": "Bearer sandbox-token"}
    for _ in range(2):
        response = await client.get("/shop/customers/link", headers=auth)
        next_url = response.links["next"]["url"]
        assert next_url == "http://sandbox.test/shop/customers/link?page=2&per_page=100"
    stats = (await client.get("/shop/_stats")).json()
    assert (stats["page_cache"]["hits"], stats["page_cache"]["misses"]) == (1, 1)


def test_a_real_server_serves_cached_pages() -> None:
    app = create_shop_app(records=3000, cache_pages=True)
    with SandboxServer(app) as server, httpx.Client(base_url=server.url) as client:
        params = {"offset": 1000, "limit": 1000}
        first = client.get("/customers", params=params)
        second = client.get("/customers", params=params)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert [record["id"] for record in second.json()["data"]] == list(range(1001, 2001))
    assert second.headers["content-length"] == str(len(second.content))
    assert _cache(app).hits == 1


def test_run_sandbox_and_the_cli_pass_the_flag_on(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.append(self.config))
    run_sandbox(8768, records=5, cache_pages=True)
    result = CliRunner().invoke(cli, ["sandbox", "--port", "8769", "--cache-pages"])
    assert result.exit_code == 0, result.output
    assert "cached until a record changes" in result.output
    result = CliRunner().invoke(cli, ["sandbox", "--port", "8770"])
    assert result.exit_code == 0, result.output
    shop, suite, plain = (config.app for config in seen)
    assert isinstance(shop, Starlette) and isinstance(suite, Starlette)
    assert isinstance(plain, Starlette)
    assert isinstance(shop.state.page_cache, PageCache)
    assert isinstance(suite.state.shop.state.page_cache, PageCache)
    assert plain.state.shop.state.page_cache is None
