"""Products and orders of the shop: deterministic data, child lists and the flat lists."""

import math
import time
from decimal import Decimal

import pytest

from interlink.sandbox import (
    OrderStore,
    create_shop_app,
    make_order,
    make_product,
    make_products,
    order_count,
    order_ids_of,
)

from .conftest import AppClient
from .readers import read_offset


def test_orders_are_deterministic_and_well_formed() -> None:
    counts = [order_count(42, customer_id) for customer_id in range(1, 1001)]
    assert set(counts) == {0, 1, 2, 3, 4, 5}
    assert counts != [order_count(43, customer_id) for customer_id in range(1, 1001)]
    order = make_order(42, 123, products=50)
    assert order == make_order(42, 123, products=50)
    assert set(order) == {
        "id",
        "customer_id",
        "number",
        "status",
        "total",
        "currency",
        "items",
        "created_at",
        "updated_at",
    }
    assert (order["id"], order["customer_id"], order["number"]) == (123, 12, "SO-00000123")
    assert order["status"] in {"new", "paid", "shipped", "cancelled"}
    assert 1 <= len(order["items"]) <= 4
    total = Decimal(0)
    for item in order["items"]:
        product = make_product(42, item["product_id"])
        assert 1 <= item["product_id"] <= 50
        assert (item["sku"], item["price"]) == (product["sku"], product["price"])
        total += item["quantity"] * Decimal(item["price"])
    assert Decimal(order["total"]) == total
    assert order["created_at"] <= order["updated_at"] < "2025"


def test_order_ids_are_unique_and_sorted() -> None:
    store = OrderStore(customers=300, products=10, seed=5)
    ids = list(store.ids())
    assert ids == sorted(set(ids))
    assert ids == [oid for c in range(1, 301) for oid in order_ids_of(5, c)]
    assert [store.ids()[i] for i in range(len(ids))] == ids
    assert store.get(ids[0]) == make_order(5, ids[0], products=10)
    missing = next(c for c in range(1, 301) if order_count(5, c) < 5)
    assert store.get(missing * 10 + 5) is None and store.get(3010) is None


async def test_customer_orders_pages(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=40, seed=7))
    busy = next(c for c in range(1, 41) if order_count(7, c) == 5)
    first = (await client.get(f"/customers/{busy}/orders", params={"per_page": 2})).json()
    assert (first["page"], first["per_page"], first["total"], first["total_pages"]) == (1, 2, 5, 3)
    seen = [order["id"] for order in first["orders"]]
    for page in (2, 3):
        body = (
            await client.get(f"/customers/{busy}/orders", params={"per_page": 2, "page": page})
        ).json()
        seen += [order["id"] for order in body["orders"]]
    assert seen == list(order_ids_of(7, busy))
    assert all(order["customer_id"] == busy for order in first["orders"])
    idle = next(c for c in range(1, 41) if order_count(7, c) == 0)
    empty = (await client.get(f"/customers/{idle}/orders")).json()
    assert (empty["orders"], empty["total"], empty["total_pages"]) == ([], 0, 0)


async def test_customer_orders_of_unknown_and_created_customers(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=10))
    assert (await client.get("/customers/11/orders")).status_code == 404
    created = (await client.post("/customers", json={"email": "a@example.com"})).json()
    response = await client.get(f"/customers/{created['id']}/orders")
    assert response.status_code == 200 and response.json()["total"] == 0


async def test_flat_orders_list_reads_every_order_once(app_client: AppClient) -> None:
    app = create_shop_app(records=200, seed=7)
    client = app_client(app)
    expected = [oid for c in range(1, 201) for oid in order_ids_of(7, c)]
    ids, requests = await read_offset(client, {}, path="/orders")
    assert ids == expected and requests == math.ceil(len(expected) / 100)
    one = (await client.get(f"/orders/{expected[3]}")).json()
    assert one == make_order(7, expected[3], products=200)
    assert (await client.get("/orders/5")).status_code == 404


async def test_orders_filter_by_updated_since(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=300, seed=7))
    since = "2023-09-01T00:00:00Z"
    every = [make_order(7, oid, products=300) for c in range(1, 301) for oid in order_ids_of(7, c)]
    expected = [order["id"] for order in every if order["updated_at"] >= since]
    ids, _ = await read_offset(client, {"updated_since": since}, path="/orders")
    assert ids == expected and 0 < len(expected) < len(every)
    busy = next(c for c in range(1, 301) if order_count(7, c) == 5)
    body = (await client.get(f"/customers/{busy}/orders", params={"updated_since": since})).json()
    assert [o["id"] for o in body["orders"]] == [
        oid for oid in order_ids_of(7, busy) if oid in set(expected)
    ]


async def test_order_offsets_are_cheap_for_10_000_customers(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=10_000, seed=1))
    started = time.perf_counter()
    first = (await client.get("/orders", params={"offset": 20_000, "limit": 1000})).json()
    for offset in range(0, 25_000, 2500):
        await client.get("/orders", params={"offset": offset, "limit": 100})
    assert time.perf_counter() - started < 2
    assert 20_000 < first["total"] < 30_000 and len(first["data"]) == 1000


@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 1007])
async def test_products_read_every_record_once(app_client: AppClient, size: int) -> None:
    client = app_client(create_shop_app(records=3, products=size, seed=9))
    ids, requests = await read_offset(client, {}, path="/products")
    assert ids == list(range(1, size + 1)) and requests == max(1, math.ceil(size / 100))


async def test_products_default_to_records_and_filter(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=120, seed=9))
    page = (await client.get("/products", params={"offset": 100})).json()
    assert page["total"] == 120 and page["data"] == make_products(9, 20, start=101)
    assert (await client.get("/products/120")).json() == make_product(9, 120)
    assert (await client.get("/products/121")).status_code == 404
    since = "2023-06-01T00:00:00Z"
    expected = [p["id"] for p in make_products(9, 120) if p["updated_at"] >= since]
    ids, _ = await read_offset(client, {"updated_since": since}, path="/products")
    assert ids == expected


async def test_orders_without_products_have_no_items(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=30, products=0))
    orders = (await client.get("/orders")).json()["data"]
    assert orders and all(o["items"] == [] and o["total"] == "0.00" for o in orders)


async def test_new_endpoints_go_through_auth_limits_and_stats(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=10, token="t", rate_limit=(1, 60, 2)))
    assert (await client.get("/orders")).status_code == 401
    headers = {"Authorization": "Bearer t"}
    assert (await client.get("/products", headers=headers)).status_code == 200
    assert (await client.get("/customers/cursor", headers=headers)).status_code == 200
    assert (await client.get("/customers/link", headers=headers)).status_code == 429
    stats = (await client.get("/_stats")).json()
    assert (stats["unauthorized"], stats["rate_limited"], stats["requests"]) == (1, 1, 4)
    assert stats["paths"]["/customers/cursor"] == 1
