"""Connectors end to end against the sandbox: real servers on 127.0.0.1, every list style."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.connectors._position_paginators import default_overlap
from interlink.errors import ApiError, AuthError, OAuthError, RequestRejectedError
from interlink.sandbox import SandboxServer, create_sandbox_app, create_shop_app

TOKEN = "sandbox-token"
PAGE = 100

STYLES: dict[str, dict[str, Any]] = {
    "offset": {
        "path": "/customers",
        "records": "data",
        "paginate": {"type": "offset", "page_size": PAGE},
        "concurrency": 1,
    },
    "offset_concurrent": {
        "path": "/customers",
        "records": "data",
        "paginate": {"type": "offset", "page_size": PAGE},
        "concurrency": 4,
    },
    "page": {
        "path": "/customers/pages",
        "records": "customers",
        "paginate": {"type": "page", "page_size": PAGE, "total_pages_path": "total_pages"},
        "concurrency": 3,
    },
    "page_without_total": {
        "path": "/customers/pages",
        "records": "customers",
        "paginate": {"type": "page", "page_size": PAGE},
    },
    "cursor": {
        "path": "/customers/cursor",
        "records": "data",
        "paginate": {"type": "cursor", "cursor_path": "next_cursor", "page_size": PAGE},
    },
    "link_header": {
        "path": "/customers/link",
        "paginate": {"type": "link_header", "page_size": PAGE},
    },
    "next_url": {
        "path": "/customers/next-url",
        "records": "results",
        "paginate": {"type": "next_url", "next_path": "next", "page_size": PAGE},
    },
    "wrapped": {
        "path": "/customers/wrapped",
        "records": "data.customers",
        "paginate": {"type": "offset", "page_size": PAGE, "total_path": "data.total"},
    },
}


def config_for(url: str, resources: dict[str, Any], **connection: Any) -> InterlinkConfig:
    return InterlinkConfig.model_validate(
        {
            "connections": {
                "shop": {
                    "base_url": url,
                    "auth": {"type": "bearer", "token": TOKEN},
                    **connection,
                }
            },
            "resources": {"shop": resources},
        }
    )


@pytest.fixture(scope="module")
def shops() -> Iterator[Any]:
    """A shop server per data size, started on first use and shared by the module."""
    servers: dict[int, SandboxServer] = {}

    def serve(records: int) -> str:
        if records not in servers:
            servers[records] = SandboxServer(create_shop_app(records=records, token=TOKEN))
            servers[records].start()
        return servers[records].url

    yield serve
    for server in servers.values():
        server.stop()


def expected_requests(style: str, n: int) -> set[int]:
    pages = max(1, math.ceil(n / PAGE))
    if STYLES[style]["paginate"]["type"] == "offset" and n > PAGE:
        # Each page after the first asks `overlap` records back (default_overlap).
        pages = 1 + math.ceil((n - PAGE) / (PAGE - default_overlap(PAGE)))
    if style == "page_without_total" and n % PAGE == 0 and n:
        return {pages + 1}  # only an empty page can say it was the last
    if style == "page_without_total" and 0 < n < PAGE:
        return {2}  # a short first page may be a silent cap on per_page: one more asks
    if style in ("cursor", "link_header", "next_url") and n % PAGE == 0 and n:
        return {pages, pages + 1}  # depends on whether the API links past the last page
    return {pages}


@pytest.mark.parametrize("n", [0, 1, PAGE - 1, PAGE, PAGE + 1, 10_007])
@pytest.mark.parametrize("style", sorted(STYLES))
async def test_every_record_exactly_once(shops, style, n):
    url = shops(n)
    async with Catalog(config_for(url, {"customers": STYLES[style]})) as catalog:
        ids: list[int] = []
        pages = 0
        async for page in catalog.resource("shop.customers").pages():
            ids.extend(record["id"] for record in page.records)
            pages += 1
        stats = catalog.client("shop").stats
    assert ids == list(range(1, n + 1)), f"{style}: {len(ids)} records, {len(set(ids))} distinct"
    assert stats.requests in expected_requests(style, n)
    assert stats.retries == 0


async def test_resume_mid_read_from_every_style_checkpoint(shops):
    url = shops(1_050)
    for style in ("offset", "page", "cursor", "link_header", "next_url"):
        async with Catalog(config_for(url, {"customers": STYLES[style]})) as catalog:
            resource = catalog.resource("shop.customers")
            first: list[int] = []
            async for page in resource.pages():
                first.extend(r["id"] for r in page.records)
                if len(first) >= 300:
                    checkpoint = page.checkpoint
                    break
            rest = [r["id"] async for r in resource.records(resume=checkpoint)]
        assert first + rest == list(range(1, 1_051)), style


async def test_error_envelopes_raise_with_their_message(shops):
    url = shops(1_000)
    resources = {
        "disabled": {"path": "/customers/error-envelope", "records": "data"},
        "failing": {
            "path": "/customers/wrapped",
            "params": {"fail_at": 300},
            "records": "data.customers",
            # Pages at offsets 0, 100, 200, then 300 fails (no overlap: the offsets align).
            "paginate": {
                "type": "offset",
                "page_size": PAGE,
                "total_path": "data.total",
                "overlap": 0,
            },
            "concurrency": 1,
        },
    }
    async with Catalog(config_for(url, resources)) as catalog:
        with pytest.raises(ApiError, match="temporarily disabled"):
            [r async for r in catalog.resource("shop.disabled").records()]
        seen: list[int] = []
        with pytest.raises(ApiError, match="reported an error"):
            async for page in catalog.resource("shop.failing").pages():
                seen.extend(r["id"] for r in page.records)
    assert seen == list(range(1, 301))


async def test_incremental_reads_find_the_changes_and_nothing_else():
    spec = {
        **STYLES["offset"],
        "incremental": {"field": "updated_at", "param": "updated_since"},
    }
    with SandboxServer(create_shop_app(records=2_000, token=TOKEN)) as server:
        async with Catalog(config_for(server.url, {"customers": spec})) as catalog:
            customers = catalog.resource("shop.customers")
            assert len([r async for r in customers.records()]) == 2_000
            cursor = customers.last_cursor
            assert cursor is not None
            again = [r async for r in customers.records(since=cursor)]
            # `>=`: the record(s) at the cursor come again, nothing else.
            assert all(r["updated_at"] == cursor for r in again)

            client = catalog.client("shop")
            await client.patch("/customers/17", json={"first_name": "Changed"})
            await client.patch("/customers/1999", json={"company": "New Co"})
            await client.post("/_touch", json={"resource": "customers", "ids": [500]})

            changed = [r async for r in customers.records(since=cursor)]
            changed_ids = {r["id"] for r in changed} - {r["id"] for r in again}
            assert changed_ids == {17, 500, 1999}
            assert next(r for r in changed if r["id"] == 17)["first_name"] == "Changed"
            # The changes were made just now: at or past the read's signpost (the second it
            # began), they need not move the cursor, and the next read meets them again.
            assert customers.last_cursor >= cursor
            later = {r["id"] async for r in customers.records(since=customers.last_cursor)}
            assert later and (customers.last_cursor > cursor or {17, 500, 1999} <= later)


async def test_child_orders_match_the_flat_order_list():
    resources = {
        "customers": {**STYLES["offset"], "concurrency": 2},
        "orders": {
            "path": "/customers/{parent.id}/orders",
            "parent": "customers",
            "parent_key": "customer_id",
            "records": "orders",
            "paginate": {"type": "page", "page_size": 2, "total_pages_path": "total_pages"},
            "concurrency": 8,
        },
        "all_orders": {
            "path": "/orders",
            "records": "data",
            "paginate": {"type": "offset", "page_size": PAGE},
        },
    }
    with SandboxServer(create_shop_app(records=230, token=TOKEN)) as server:
        async with Catalog(config_for(server.url, resources)) as catalog:
            children = [r async for r in catalog.resource("shop.orders").records()]
            flat = [r async for r in catalog.resource("shop.all_orders").records()]
    assert len(children) == len(flat) > 230
    assert sorted((o["id"], o["customer_id"]) for o in children) == sorted(
        (o["id"], o["customer_id"]) for o in flat
    )


async def test_auth_failures_are_typed():
    with SandboxServer(create_shop_app(records=10, token=TOKEN)) as server:
        config = InterlinkConfig.model_validate(
            {
                "connections": {
                    "shop": {"base_url": server.url, "auth": {"type": "bearer", "token": "wrong"}}
                },
                "resources": {"shop": {"customers": STYLES["offset"]}},
            }
        )
        async with Catalog(config) as catalog:
            with pytest.raises(AuthError) as caught:
                [r async for r in catalog.resource("shop.customers").records()]
    assert caught.value.status_code == 401
    assert caught.value.attempts == 1
    assert "wrong" not in str(caught.value)


async def test_server_rate_limit_is_honoured_with_concurrent_pages():
    with SandboxServer(
        create_shop_app(records=3_000, token=TOKEN, rate_limit=(40.0, 1.0, 8))
    ) as server:
        spec = {**STYLES["offset"], "concurrency": 6}
        async with Catalog(
            config_for(server.url, {"customers": spec}, retry={"max_attempts": 6})
        ) as catalog:
            ids = [r["id"] async for r in catalog.resource("shop.customers").records()]
            stats = await catalog.client("shop").get_json("/_stats")
    assert ids == list(range(1, 3_001))
    # 30 pages at 40/s with a burst of 8: at most the first concurrent burst is refused.
    assert stats["rate_limited"] <= 6


# --- the suite: commerce (JSON:API + OAuth2), GraphQL, SOAP ----------------------------------


@pytest.fixture(scope="module")
def suite() -> Iterator[str]:
    app = create_sandbox_app(records=1_234, token=TOKEN, commerce_records=250)
    with SandboxServer(app) as server:
        yield server.url


def suite_config(url: str, **overrides: Any) -> InterlinkConfig:
    commerce_auth = {
        "type": "oauth2_client_credentials",
        "token_url": "oauth2-token",
        "client_id": "commerce-client",
        "client_secret": "commerce-secret",
        "auth_method": "client_secret_post",
        **overrides.get("commerce_auth", {}),
    }
    query = """
      query($first: Int, $after: String, $since: String) {
        products(first: $first, after: $after, updatedSince: $since) {
          totalCount
          edges { node { id sku name price updatedAt } }
          pageInfo { hasNextPage endCursor }
        }
      }"""
    return InterlinkConfig.model_validate(
        {
            "connections": {
                "commerce": {"base_url": f"{url}/commerce", "auth": commerce_auth},
                "graph": {
                    "base_url": url,
                    "auth": {"type": "bearer", "token": overrides.get("graph_token", TOKEN)},
                },
                "soap": {"base_url": url},
            },
            "resources": {
                "commerce": {
                    "customers": {
                        "path": "/api/customers",
                        "format": "jsonapi",
                        "paginate": {
                            "type": "page",
                            "page_param": "page[number]",
                            "size_param": "page[size]",
                            "page_size": 40,
                            "total_path": "meta.total",
                        },
                        "incremental": {"field": "updated_at", "param": "filter[updated_since]"},
                    },
                    "customers_by_link": {
                        "path": "/api/customers",
                        "format": "jsonapi",
                        "params": {"page[size]": 60},
                        "paginate": {"type": "next_url", "next_path": "links.next"},
                    },
                },
                "graph": {
                    "products": {
                        "type": "graphql",
                        "query": query,
                        "paginate": {"type": "relay", "path": "data.products", "page_size": 100},
                        "incremental": {"field": "updatedAt", "param": "since"},
                    }
                },
                "soap": {
                    "products": {
                        "type": "soap",
                        "wsdl": "/soap?wsdl",
                        "operation": "GetProducts",
                        "records": "products.Product",
                        "paginate": {
                            "type": "page",
                            "page_size": 100,
                            "size_param": "pageSize",
                            "total_pages_path": "totalPages",
                        },
                    }
                },
            },
        }
    )


async def test_jsonapi_with_oauth2_client_credentials(suite):
    async with Catalog(suite_config(suite)) as catalog:
        customers = catalog.writable("commerce.customers")
        listed = [r async for r in customers.records()]
        linked = [r async for r in catalog.resource("commerce.customers_by_link").records()]
        assert [r["id"] for r in listed] == [str(i) for i in range(1, 251)]
        assert [r["id"] for r in linked] == [r["id"] for r in listed]
        assert {"email", "first_name", "updated_at"} <= set(listed[0])
        assert listed[0]["relationships"]["owner"] in {"1", "2", "3"}

        created = await customers.create(
            {"email": "new.person@example.org", "first_name": "New", "last_name": "Person"},
            idempotency_key="create-new-person",
        )
        again = await customers.create(
            {"email": "new.person@example.org", "first_name": "New", "last_name": "Person"},
            idempotency_key="create-new-person",
        )
        assert again["id"] == created["id"], "the idempotency key made the retry a replay"
        updated = await customers.update(created["id"], {"company": "Renamed Ltd"})
        assert updated["company"] == "Renamed Ltd" and updated["email"] == created["email"]
        fetched = await customers.get(created["id"])
        assert fetched["company"] == "Renamed Ltd"

        changed = [r async for r in customers.records(since=fetched["updated_at"])]
        assert created["id"] in {r["id"] for r in changed}

        with pytest.raises(RequestRejectedError, match="email"):
            await customers.create({"first_name": "No Email"})
        stats = await catalog.client("commerce").get_json("/_stats")
    assert stats["tokens_issued"] == 1, "one token served every request"


async def test_bad_client_secret_is_an_oauth_error(suite):
    config = suite_config(suite, commerce_auth={"client_secret": "not-it"})
    async with Catalog(config) as catalog:
        with pytest.raises(OAuthError, match="invalid_client") as caught:
            [r async for r in catalog.resource("commerce.customers").records()]
    assert "not-it" not in str(caught.value)


async def test_graphql_relay_reads_every_product_and_incrementally(suite):
    async with Catalog(suite_config(suite)) as catalog:
        products = catalog.resource("graph.products")
        ids = [int(r["id"]) async for r in products.records()]
        assert ids == list(range(1, 1_235))
        cursor = products.last_cursor
        newest = [r async for r in products.records(since=cursor)]
        assert newest and all(r["updatedAt"] >= cursor for r in newest)


async def test_graphql_errors_and_auth(suite):
    async with Catalog(suite_config(suite, graph_token="wrong")) as catalog:
        with pytest.raises(AuthError):
            [r async for r in catalog.resource("graph.products").records()]
    async with Catalog(suite_config(suite)) as catalog:
        products = catalog.resource("graph.products")
        with pytest.raises(ApiError, match=r"invalid cursor .bogus!. \(at products\)") as caught:
            [r async for r in products.records(concurrency=1, resume={"cursor": "bogus!"})]
    assert caught.value.status_code == 200


async def test_soap_pages_and_faults(suite):
    async with Catalog(suite_config(suite)) as catalog:
        products = catalog.resource("soap.products")
        records = [r async for r in products.records()]
        assert [r["id"] for r in records] == list(range(1, 1_235))
        assert isinstance(records[0]["price"], str), "decimals come back as strings"
        one = await products.call("GetProduct", id=7)
        assert one["id"] == 7 and one["sku"] == records[6]["sku"]
        with pytest.raises(RequestRejectedError, match="not found"):
            await products.call("GetProduct", id=999_999)
        stats = catalog.client("soap").stats
    # The client fault was not retried: it arrives as HTTP 500 but will never succeed.
    assert stats.statuses[500] == 1


def test_sandbox_suite_lists_its_services(suite):
    body = httpx.get(f"{suite}/").json()
    assert set(body["services"]) >= {"shop", "commerce", "graphql", "soap"}
