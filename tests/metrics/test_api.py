"""`GET /api/v1/metrics` and `/api/v1/metrics/{name}`: the real app on a real database,
with real API keys: definitions, results in the envelope, parameters, and every refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from interlink.server import create_app
from interlink.server._envelope import API_PREFIX
from interlink.store import Store, create_api_key

from .conftest import create_table, make_config

ROWS = [
    {"id": 1, "at": "2026-03-28T23:30:00Z", "status": "paid", "amount": 10},  # Berlin: 29th
    {"id": 2, "at": "2026-03-29T12:00:00Z", "status": "new", "amount": 5},
    {"id": 3, "at": "2026-03-30T12:00:00Z", "status": "paid", "amount": 1},
]
METRICS = {
    "orders": {
        "source": "sql:orders",
        "time_field": "at",
        "group_by": "status",
        "timezone": "Europe/Berlin",
        "period": {"from": "2026-03-28", "to": "2026-03-30"},
    },
    "revenue": {
        "source": "sql:orders",
        "time_field": "at",
        "op": "sum",
        "field": "amount",
        "period": "7d",
    },
    "not_synced": {"source": "sql:absent", "time_field": "at"},
    "live": {"source": "shop.orders", "time_field": "created_at"},
}


@pytest.fixture
async def api(sqlite_url) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    columns = {"id": sa.Integer(), "at": sa.Text(), "status": sa.Text(), "amount": sa.Integer()}
    create_table(sqlite_url, "orders", columns, ROWS)
    config = make_config(sqlite_url, METRICS)  # the shop is nowhere: port 9 refuses
    store = Store.open(config.database)
    app = create_app(config, store=store)
    keys = {scope: create_api_key(store.engine, scope, scope).secret for scope in ("read",)}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://interlink.test") as http:
        yield http, {"Authorization": f"Bearer {keys['read']}"}
    store.close()


async def get(api, path: str, **params: Any) -> httpx.Response:
    http, headers = api
    return await http.get(f"{API_PREFIX}{path}", params=params, headers=headers)


async def test_the_metrics_and_their_definitions(api):
    answer = await get(api, "/metrics")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "success" and body["meta"]["request_id"]
    by_name = {m["name"]: m for m in body["data"]}
    assert list(by_name) == list(METRICS)
    assert by_name["orders"] == {
        "name": "orders",
        "source": "sql:orders",
        "live": False,
        "time_field": "at",
        "op": "count",
        "field": None,
        "group_by": "status",
        "period": "2026-03-28..2026-03-30",
        "granularity": "day",
        "timezone": "Europe/Berlin",
        "account": None,
    }
    assert by_name["revenue"]["period"] == "7d" and by_name["live"]["live"] is True


async def test_a_metric_in_the_envelope(api):
    answer = await get(api, "/metrics/orders")
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["labels"] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert data["totals"] == [0, 2, 1] and data["total"] == 3
    assert [(s["group"], s["values"]) for s in data["series"]] == [
        ("paid", [0, 1, 1]),
        ("new", [0, 1, 0]),
    ]
    assert data["buckets"][1] == {
        "label": "2026-03-29",
        "from": "2026-03-29",
        "to": "2026-03-29",
        "start": "2026-03-28T23:00:00Z",
        "end": "2026-03-29T22:00:00Z",
    }
    assert data["from"] == "2026-03-28" and data["requested"]["from"] == "2026-03-28"
    assert data["previous"] == {"from": "2026-03-25", "to": "2026-03-27"}
    assert data["fields"] == ["id", "at", "status", "amount"]


async def test_parameters_override_the_definition(api):
    answer = await get(
        api, "/metrics/orders", **{"from": "2026-03-23", "to": "2026-03-31"}, granularity="week"
    )
    data = answer.json()["data"]
    assert data["labels"] == ["2026-W13", "2026-W14"] and data["totals"] == [2, 1]
    amounts = await get(api, "/metrics/orders", group_by="amount", period="3d", to="2026-03-30")
    data = amounts.json()["data"]
    assert data["group_by"] == "amount" and data["groups"] == ["1", "10", "5"]
    assert data["requested"] == {"from": "2026-03-28", "to": "2026-03-30"}


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"group_by": "nope"}, "group_by", "no column 'nope' in table 'orders'"),
        ({"group_by": "x; DROP TABLE orders"}, "group_by", "no column"),
        ({"from": "2026-13-01"}, "from", ""),
        ({"from": "2026-03-30", "to": "2026-03-01"}, "to", "is before from"),
        ({"period": "month"}, "period", ""),
        ({"granularity": "hour"}, "granularity", ""),
        ({"groupby": "status"}, "groupby", "unknown query parameter"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(api, params, field, words):
    answer = await get(api, "/metrics/orders", **params)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"][0]["field"] == field and words in error["details"][0]["issue"]
    still = await get(api, "/metrics/orders")
    assert still.json()["data"]["total"] == 3  # the table is still there


async def test_refusals(api):
    missing = await get(api, "/metrics/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    not_synced = await get(api, "/metrics/not_synced")
    assert not_synced.status_code == 409
    error = not_synced.json()["error"]
    assert error["code"] == "METRIC_UNAVAILABLE" and "no table 'absent'" in error["message"]
    down = await get(api, "/metrics/live")
    assert down.status_code == 502 and down.json()["error"]["code"] == "UPSTREAM_ERROR"
    http, _ = api
    anonymous = await http.get(f"{API_PREFIX}/metrics")
    assert anonymous.status_code == 401
