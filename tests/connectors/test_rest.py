"""REST and JSON:API resources: get, create, update, delete, child fan-out (MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest

from interlink.connectors import ChildResource, document_for, flatten_resource
from interlink.errors import ConfigError, NotFoundError, RequestRejectedError

from .conftest import make_catalog


class JsonApi:
    def __init__(self) -> None:
        self.store: dict[str, dict] = {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        parts = request.url.path.strip("/").split("/")
        headers = {"Content-Type": "application/vnd.api+json"}
        if request.method == "POST":
            data = json.loads(request.content)["data"]
            if "email" not in data["attributes"]:
                return httpx.Response(
                    422,
                    json={
                        "errors": [
                            {"status": "422", "title": "Invalid", "detail": "email is required"}
                        ]
                    },
                    headers=headers,
                )
            new_id = str(len(self.store) + 1)
            self.store[new_id] = {**data, "id": new_id}
            return httpx.Response(201, json={"data": self.store[new_id]}, headers=headers)
        if len(parts) == 2:
            item = self.store.get(parts[1])
            if item is None:
                return httpx.Response(404, json={"errors": [{"title": "Not found"}]})
            if request.method == "PATCH":
                data = json.loads(request.content)["data"]
                assert data["id"] == parts[1] and data["type"] == "customers"
                item["attributes"].update(data["attributes"])
            if request.method == "DELETE":
                del self.store[parts[1]]
                return httpx.Response(204)
            return httpx.Response(200, json={"data": item}, headers=headers)
        return httpx.Response(200, json={"data": list(self.store.values())}, headers=headers)


CUSTOMERS = {"path": "/customers", "format": "jsonapi"}


async def test_jsonapi_create_get_update_list_delete():
    api = JsonApi()
    async with make_catalog({"customers": CUSTOMERS}, api) as catalog:
        customers = catalog.writable("api.customers")
        created = await customers.create({"email": "ada@example.com", "first_name": "Ada"})
        assert created == {
            "id": "1",
            "type": "customers",
            "email": "ada@example.com",
            "first_name": "Ada",
        }
        post = api.requests[0]
        assert post.headers["content-type"] == "application/vnd.api+json"
        assert post.headers["accept"] == "application/vnd.api+json"
        assert json.loads(post.content) == {
            "data": {
                "type": "customers",
                "attributes": {"email": "ada@example.com", "first_name": "Ada"},
            }
        }
        updated = await customers.update("1", {"first_name": "Augusta"})
        assert updated["first_name"] == "Augusta" and updated["email"] == "ada@example.com"
        assert api.requests[-1].method == "PATCH"
        assert (await customers.get("1"))["first_name"] == "Augusta"
        listed = [r async for r in customers.records()]
        assert [r["id"] for r in listed] == ["1"]
        await customers.delete("1")
        with pytest.raises(NotFoundError):
            await customers.get("1")


async def test_jsonapi_validation_error_is_raised_with_its_detail():
    async with make_catalog({"customers": CUSTOMERS}, JsonApi()) as catalog:
        with pytest.raises(RequestRejectedError, match="Invalid: email is required"):
            await catalog.writable("api.customers").create({"first_name": "x"})


def test_flatten_and_document_round_trip():
    obj = {
        "type": "customers",
        "id": "7",
        "attributes": {"email": "a@b.c", "id": "ignored"},
        "relationships": {
            "owner": {"data": {"type": "users", "id": "1"}},
            "tags": {"data": [{"type": "tags", "id": "3"}, {"type": "tags", "id": "4"}]},
            "empty": {"data": None},
        },
    }
    record = flatten_resource(obj)
    assert record == {
        "id": "7",
        "type": "customers",
        "email": "a@b.c",
        "relationships": {"owner": "1", "tags": ["3", "4"], "empty": None},
    }
    owner = {"owner": {"data": {"type": "users", "id": "2"}}}
    doc = document_for({**record, "relationships": owner}, "customers", id="7")
    assert doc == {
        "data": {
            "type": "customers",
            "id": "7",
            "attributes": {"email": "a@b.c"},
            "relationships": {"owner": {"data": {"type": "users", "id": "2"}}},
        }
    }


async def test_plain_json_write_with_idempotency_key_and_item_path():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(201, json={"id": 9, **json.loads(request.content)})
        return httpx.Response(200, json={"id": 9, "name": "x"})

    spec = {"path": "/things", "item_path": "/thing/{id}/detail", "update_method": "PUT"}
    async with make_catalog({"things": spec}, handler) as catalog:
        things = catalog.writable("api.things")
        created = await things.create({"name": "x"}, idempotency_key="sync-1-9")
        await things.update(9, {"name": "y"})
        await things.get(9)
    assert created == {"id": 9, "name": "x"}
    assert seen[0].headers["idempotency-key"] == "sync-1-9"
    assert seen[1].method == "PUT" and seen[1].url.path == "/thing/9/detail"
    assert seen[2].url.path == "/thing/9/detail"


async def test_child_resources_fan_out_and_carry_the_parent_key():
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/customers":
            offset = int(request.url.params["offset"])
            data = [{"id": i} for i in range(1, 8)][offset : offset + 3]
            return httpx.Response(200, json={"data": data, "total": 7})
        customer = int(path.split("/")[2])
        orders = [{"id": customer * 10 + k} for k in range(customer % 3)]
        return httpx.Response(200, json={"orders": orders})

    resources = {
        "customers": {
            "path": "/customers",
            "paginate": {"type": "offset", "page_size": 3, "overlap": 0},
        },
        "orders": {
            "path": "/customers/{parent.id}/orders",
            "parent": "customers",
            "parent_key": "customer_id",
            "records": "orders",
            "concurrency": 2,
        },
    }
    async with make_catalog(resources, handler) as catalog:
        orders = catalog.resource("api.orders")
        assert isinstance(orders, ChildResource)
        pages = [p async for p in orders.pages()]
    records = [r for p in pages for r in p.records]
    expected = sorted((c * 10 + k, c) for c in range(1, 8) for k in range(c % 3))
    assert sorted((r["id"], r["customer_id"]) for r in records) == expected
    markers = [p for p in pages if not p.records]
    # Every checkpoint keeps when the whole read began: the signpost of every child read.
    began = {p.checkpoint.pop("read_began") for p in pages if p.checkpoint is not None}
    assert len(began) == 1
    assert [m.checkpoint for m in markers] == [
        {"offset": 3, "received": 3, "announced": 7},
        {"offset": 6, "received": 6, "announced": 7},
        None,
    ]
    assert pages[-1].done
    # Issue 10: a child page carries the position before its parent page ({} for the first
    # parent page: "under way, start again"), never None, which would end the read.
    before = [
        {},
        {"offset": 3, "received": 3, "announced": 7},
        {"offset": 6, "received": 6, "announced": 7},
    ]
    for page in pages:
        if page.records:
            assert page.checkpoint == before[(page.records[0]["customer_id"] - 1) // 3]


async def test_child_errors_surface():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/customers":
            return httpx.Response(200, json={"data": [{"id": 1}, {"id": 2}]})
        return httpx.Response(404, json={"message": "customer gone"})

    resources = {
        "customers": {"path": "/customers"},
        "orders": {"path": "/customers/{parent.id}/orders", "parent": "customers"},
    }
    async with make_catalog(resources, handler) as catalog:
        with pytest.raises(NotFoundError, match="customer gone"):
            [p async for p in catalog.resource("api.orders").pages()]


async def test_unknown_resource_names_the_known_ones():
    async with make_catalog({"customers": CUSTOMERS}, JsonApi()) as catalog:
        with pytest.raises(ConfigError, match="api.customers"):
            catalog.resource("api.custom")


async def test_a_child_read_gives_each_signpost_warning_once_and_takes_the_api_clock():
    """A child resource runs one read per parent: records dated ahead, or an API clock
    behind, are said once for the whole read (not once per parent), and each child
    read's signpost follows the API's clock when it is behind."""
    behind = "Mon, 02 Mar 2026 11:00:00 GMT"  # hours before now, by this machine's clock

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Date": behind}
        if request.url.path == "/customers":
            data = [{"id": i} for i in range(1, 5)]
            return httpx.Response(200, json={"data": data, "total": 4}, headers=headers)
        customer = int(request.url.path.split("/")[2])
        orders = [
            {"id": customer * 10, "updated_at": "2026-03-02T10:00:00Z"},
            {"id": customer * 10 + 1, "updated_at": "2099-01-01T00:00:00Z"},
            {"id": customer * 10 + 2, "updated_at": "2026-03-02T10:30:00Z"},
        ]
        return httpx.Response(200, json={"orders": orders}, headers=headers)

    resources = {
        "customers": {"path": "/customers"},
        "orders": {
            "path": "/customers/{parent.id}/orders",
            "parent": "customers",
            "records": "orders",
            "incremental": {"field": "updated_at"},
        },
    }
    async with make_catalog(resources, handler) as catalog:
        orders = catalog.resource("api.orders")
        pages = [p async for p in orders.pages()]
    warnings = [w for p in pages for w in p.warnings]
    assert len([w for w in warnings if "dated after this read began" in w]) == 1, warnings
    assert len([w for w in warnings if "the API's clock" in w]) == 1, warnings
    # 10:30 is before the API's 11:00; 2099 is held back by any clock.
    assert orders.last_cursor == "2026-03-02T10:30:00Z"
