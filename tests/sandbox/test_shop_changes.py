"""Changes through the shop (PATCH, POST, /_touch) and what incremental reads see of them."""

from typing import Any

import httpx
import pytest

from interlink.sandbox import create_shop_app, make_customer
from interlink.sandbox._store import now_timestamp

from .conftest import AppClient, ServeShop
from .readers import CUSTOMER_READERS


def _ids(page: dict[str, Any]) -> list[int]:
    return [record["id"] for record in page["data"]]


async def test_patch_changes_only_the_given_fields(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=10, seed=3))
    before = make_customer(3, 4)
    started = now_timestamp()
    response = await client.patch(
        "/customers/4", json={"first_name": "Zed", "address": {"city": "Oslo"}, "tags": []}
    )
    assert response.status_code == 200
    changed = response.json()
    assert changed["updated_at"] >= started > before["updated_at"]
    assert changed == {
        **before,
        "first_name": "Zed",
        "address": {**before["address"], "city": "Oslo"},
        "tags": [],
        "updated_at": changed["updated_at"],
    }
    assert (await client.get("/customers/4")).json() == changed
    assert (await client.get("/customers", params={"offset": 3, "limit": 1})).json()["data"] == [
        changed
    ]
    assert (await client.get("/_stats")).json()["updates"] == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"email": "no-at-sign"}, {"email"}),
        ({"first_name": 7}, {"first_name"}),
        ({"id": 9, "updated_at": "x"}, {"id", "updated_at"}),
        ({"shoe_size": 44}, {"shoe_size"}),
        ({"address": "Oslo"}, {"address"}),
        ([1, 2], {""}),
    ],
)
async def test_invalid_patch_is_422(app_client: AppClient, body: object, fields: set[str]) -> None:
    client = app_client(create_shop_app(records=10))
    response = await client.patch("/customers/2", json=body)
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["error"]["details"]} == fields
    assert (await client.get("/customers/2")).json() == make_customer(42, 2)


async def test_patch_of_an_unknown_customer_or_bad_json(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=10))
    assert (await client.patch("/customers/11", json={"first_name": "A"})).status_code == 404
    bad = await client.patch("/customers/1", content=b"{")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"


async def test_a_created_customer_can_be_patched(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=3))
    created = (await client.post("/customers", json={"email": "n@example.com"})).json()
    patched = (await client.patch(f"/customers/{created['id']}", json={"phone": "1"})).json()
    assert patched["phone"] == "1" and patched["email"] == "n@example.com"
    assert (await client.get("/customers")).json()["data"][-1] == patched


@pytest.mark.parametrize("style", sorted(CUSTOMER_READERS))
async def test_only_changed_records_show_up_in_incremental_reads(
    app_client: AppClient, style: str
) -> None:
    client = app_client(create_shop_app(records=1007, seed=6))
    since = now_timestamp()
    params = {"updated_since": since}
    assert (await CUSTOMER_READERS[style](client, params))[0] == []

    # Reads, failed writes and writes to other resources change no customer.
    await client.get("/customers/5")
    await client.get("/customers", params={"limit": 1000})
    await client.patch("/customers/6", json={"email": "bad"})
    await client.post("/_touch", json={"resource": "products", "ids": [5]})
    assert (await CUSTOMER_READERS[style](client, params))[0] == []

    await client.patch("/customers/900", json={"company": "New Co"})
    touched = await client.post("/_touch", json={"resource": "customers", "ids": [7, 250]})
    assert touched.status_code == 200
    assert touched.json()["touched"] == [7, 250]
    created = (await client.post("/customers", json={"email": "new@example.com"})).json()
    ids, _ = await CUSTOMER_READERS[style](client, params)
    assert ids == [7, 250, 900, created["id"]]


async def test_touch_changes_only_updated_at(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=20, seed=6))
    response = await client.post("/_touch", json={"resource": "customers", "ids": [3]})
    stamp = response.json()["updated_at"]
    assert (await client.get("/customers/3")).json() == {
        **make_customer(6, 3),
        "updated_at": stamp,
    }


@pytest.mark.parametrize(
    ("resource", "record_id", "path"),
    [("products", 12, "/products"), ("orders", None, "/orders")],
)
async def test_touch_products_and_orders(
    app_client: AppClient, resource: str, record_id: int | None, path: str
) -> None:
    app = create_shop_app(records=50, seed=6)
    client = app_client(app)
    if record_id is None:
        record_id = app.state.orders.ids()[7]
    since = now_timestamp()
    assert (await client.get(path, params={"updated_since": since})).json()["total"] == 0
    await client.post("/_touch", json={"resource": resource, "ids": [record_id]})
    page = (await client.get(path, params={"updated_since": since})).json()
    assert (_ids(page), page["total"]) == ([record_id], 1)
    single = (await client.get(f"{path}/{record_id}")).json()
    assert single == page["data"][0]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"resource": "customers", "ids": [1, 99]}, 404),
        ({"resource": "invoices", "ids": [1]}, 400),
        ({"resource": "customers", "ids": ["1"]}, 400),
        ({"resource": "customers"}, 400),
        ([], 400),
    ],
)
async def test_bad_touches_change_nothing(app_client: AppClient, body: object, status: int) -> None:
    client = app_client(create_shop_app(records=10))
    response = await client.post("/_touch", json=body)
    assert response.status_code == status
    assert (await client.get("/customers/1")).json() == make_customer(42, 1)
    assert (await client.post("/_touch", content=b"{")).status_code == 400


async def test_touch_needs_no_auth_and_is_not_limited_or_counted(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=10, token="t", rate_limit=(1, 60, 1)))
    for _ in range(3):
        response = await client.post("/_touch", json={"resource": "customers", "ids": [1]})
        assert response.status_code == 200
    assert (await client.get("/_stats")).json()["requests"] == 0


async def test_reset_forgets_changes(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=10, seed=2))
    await client.patch("/customers/2", json={"first_name": "X"})
    await client.post("/_touch", json={"resource": "orders", "ids": []})
    await client.post("/_touch", json={"resource": "products", "ids": [1]})
    await client.post("/_reset")
    assert (await client.get("/customers/2")).json() == make_customer(2, 2)
    since = "2025-01-01T00:00:00Z"
    for path in ("/customers", "/products", "/orders"):
        assert (await client.get(path, params={"updated_since": since})).json()["total"] == 0


def test_changes_before_since_are_left_out(serve_shop: ServeShop) -> None:
    server = serve_shop(records=30)
    store = server.app.state.customers  # type: ignore[attr-defined]
    store.touch([1], "2030-01-01T00:00:00Z")
    store.touch([2], "2030-01-01T00:00:01Z")
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/customers", params={"updated_since": "2030-01-01T00:00:01Z"}).json()
        assert _ids(page) == [2]
        page = client.get("/customers", params={"updated_since": "2030-01-01T00:00:00.5Z"}).json()
        assert _ids(page) == [2]
