"""Pipelines into SQL tables, end to end against the sandbox (SQLite, and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import ConfigError, PipelineLockedError
from interlink.sandbox import SandboxServer, create_shop_app
from interlink.store import Store
from interlink.sync import RunResult, run_pipeline

TOKEN = "runner-token"


def boom_on_seven(record: dict[str, Any]) -> str:
    if record["id"] % 7 == 0:
        raise ValueError(f"no name for {record['id']}")
    return f"{record['first_name']} {record['last_name']}"


def make_config(url: str, database: str, pipelines: dict[str, Any]) -> InterlinkConfig:
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {"shop": {"base_url": url, "auth": {"type": "bearer", "token": TOKEN}}},
            "resources": {
                "shop": {
                    "customers": {
                        "path": "/customers",
                        "records": "data",
                        "paginate": {"type": "offset", "page_size": 100},
                        "incremental": {"field": "updated_at", "param": "updated_since"},
                    },
                    "orders": {
                        "path": "/customers/{parent.id}/orders",
                        "parent": "customers",
                        "parent_key": "customer_id",
                        "records": "orders",
                        "paginate": {
                            "type": "page",
                            "page_size": 50,
                            "total_pages_path": "total_pages",
                        },
                    },
                }
            },
            "pipelines": pipelines,
        }
    )


def run(config: InterlinkConfig, store: Store, name: str, **kwargs: Any) -> RunResult:
    async def go() -> RunResult:
        async with Catalog(config) as catalog:
            return await run_pipeline(config, name, store=store, catalog=catalog, **kwargs)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def shop() -> Iterator[SandboxServer]:
    with SandboxServer(create_shop_app(records=640, seed=9, token=TOKEN)) as server:
        yield server


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'interlink.db'}"


def rows(store: Store, table: str) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        result = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")
        return [dict(r._mapping) for r in result]


def test_full_then_incremental_run_moves_only_changes(shop, sqlite_url):
    config = make_config(
        shop.url,
        sqlite_url,
        {
            "customers": {"source": "shop.customers", "destination": {"sql": "customers"}},
        },
    )
    store = Store.open(config.database)
    first = run(config, store, "customers")
    assert first.ok and first.counts["read"] == 640 and first.counts["created"] == 640
    assert first.counts["pages"] == 7
    assert len(rows(store, "customers")) == 640

    import httpx

    headers = {"Authorization": f"Bearer {TOKEN}"}
    httpx.patch(f"{shop.url}/customers/33", json={"company": "Changed Co"}, headers=headers)
    httpx.post(f"{shop.url}/_touch", json={"resource": "customers", "ids": [400]})

    second = run(config, store, "customers")
    assert second.ok
    changed = {33, 400}
    assert second.counts["updated"] == 2, second.counts
    assert second.counts["created"] == 0
    # `>=` re-reads the records at the old cursor: they come back unchanged.
    assert second.counts["read"] == second.counts["updated"] + second.counts["unchanged"]
    table = {r["id"]: r for r in rows(store, "customers")}
    assert table[33]["company"] == "Changed Co"
    assert changed <= set(table)

    history = store.runs("customers")
    assert [r["status"] for r in history] == ["succeeded", "succeeded"]
    assert history[0]["updated"] == 2
    store.close()


def test_mapping_filter_and_failed_records_do_not_stop_the_batch(shop, sqlite_url):
    config = make_config(
        shop.url,
        sqlite_url,
        {
            "names": {
                "source": "shop.customers",
                "destination": "sql:names",
                "fields": {
                    "id": "id",
                    "name": {"call": "tests.sync.test_runner:boom_on_seven"},
                    "city": "address.city",
                    "origin": {"value": "shop"},
                },
                "filter": "id <= 300",
            },
        },
    )
    store = Store.open(config.database)
    result = run(config, store, "names")
    assert result.status == "completed_with_errors" and not result.ok
    assert result.counts["read"] == 640
    assert result.counts["skipped"] == 340
    assert result.counts["failed"] == 300 // 7
    assert result.counts["created"] == 300 - 300 // 7
    assert result.errors[0]["key"] == "7" and result.errors[0]["step"] == "map"
    assert "no name for 7" in result.errors[0]["error"]
    stored = store.record_errors(result.run_id)
    assert len(stored) == 300 // 7
    table = rows(store, "names")
    assert set(table[0]) == {"id", "name", "city", "origin"}
    assert table[0]["origin"] == "shop"
    store.close()


def test_new_fields_add_columns_and_are_recorded(shop, sqlite_url):
    config = make_config(
        shop.url,
        sqlite_url,
        {
            "slim": {
                "source": "shop.customers",
                "destination": "sql:slim",
                "fields": {"id": "id", "email": "email"},
            },
        },
    )
    store = Store.open(config.database)
    assert run(config, store, "slim").ok
    wider = make_config(
        shop.url,
        sqlite_url,
        {
            "slim": {
                "source": "shop.customers",
                "destination": "sql:slim",
                "fields": {"id": "id", "email": "email", "tags": "tags", "vip": {"value": True}},
            },
        },
    )
    result = run(wider, store, "slim", full_refresh=True)
    assert result.ok and result.counts["updated"] == 640
    with store.engine.connect() as conn:
        changes = conn.exec_driver_sql(
            "SELECT column_name, column_type FROM interlink_schema_changes "
            "WHERE table_name = 'slim' ORDER BY id"
        ).fetchall()
    assert [tuple(c) for c in changes][-2:] == [("tags", "json"), ("vip", "boolean")]
    assert rows(store, "slim")[0]["vip"] == 1
    store.close()


def test_replace_mode_empties_the_table_first(shop, sqlite_url):
    config = make_config(
        shop.url,
        sqlite_url,
        {
            "copy": {
                "source": "shop.customers",
                "destination": "sql:copy",
                "write": "replace",
                "incremental": False,
            },
        },
    )
    store = Store.open(config.database)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE copy (id BIGINT PRIMARY KEY, email TEXT)")
        conn.exec_driver_sql("INSERT INTO copy VALUES (999999, 'stale@example.org')")
    assert run(config, store, "copy").ok
    ids = [r["id"] for r in rows(store, "copy")]
    assert ids == list(range(1, 641))
    store.close()


def test_dry_run_and_limit_write_nothing_durable(shop, sqlite_url):
    config = make_config(
        shop.url,
        sqlite_url,
        {
            "customers": {"source": "shop.customers", "destination": "sql:customers"},
        },
    )
    store = Store.open(config.database)
    dry = run(config, store, "customers", dry_run=True)
    assert dry.ok and dry.would_write == 640
    assert not sa.inspect(store.engine).has_table("customers")
    trial = run(config, store, "customers", limit=150)
    assert trial.counts["read"] == 150 and len(rows(store, "customers")) == 150
    assert store.load_state("customers").cursor is None, "a trial run leaves the state alone"
    store.close()


def test_child_resource_pipeline(shop, sqlite_url):
    config = make_config(
        shop.url,
        sqlite_url,
        {
            "orders": {"source": "shop.orders", "destination": "sql:orders"},
        },
    )
    store = Store.open(config.database)
    result = run(config, store, "orders")
    assert result.ok
    table = rows(store, "orders")
    assert len(table) == result.counts["created"] > 640
    assert all(r["customer_id"] == r["id"] // 10 for r in table)
    store.close()


def test_one_run_at_a_time(shop, sqlite_url):
    config = make_config(
        shop.url,
        sqlite_url,
        {
            "customers": {"source": "shop.customers", "destination": "sql:customers"},
        },
    )
    store = Store.open(config.database)
    run_id = store.begin_run("customers")
    with pytest.raises(PipelineLockedError, match="already running"):
        run(config, store, "customers")
    store.finish_run("customers", run_id, status="succeeded", counts={}, errors=[])
    assert run(config, store, "customers").ok
    store.close()


def test_unknown_pipeline_names_the_known_ones(shop, sqlite_url):
    config = make_config(
        shop.url,
        sqlite_url,
        {
            "customers": {"source": "shop.customers", "destination": "sql:customers"},
        },
    )
    store = Store.open(config.database)
    with pytest.raises(ConfigError, match="unknown pipeline 'nope'; known: customers"):
        run(config, store, "nope")
    store.close()


@pytest.mark.postgres
def test_the_same_pipeline_into_postgresql(shop, postgres_url):
    config = make_config(
        shop.url,
        postgres_url,
        {
            "customers_pg": {"source": "shop.customers", "destination": "sql:customers_pg"},
        },
    )
    store = Store.open(config.database)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS customers_pg")
        conn.exec_driver_sql("DELETE FROM interlink_state WHERE pipeline = 'customers_pg'")
        conn.exec_driver_sql("DELETE FROM interlink_locks WHERE pipeline = 'customers_pg'")
    first = run(config, store, "customers_pg")
    assert first.ok and first.counts["created"] == 640
    again = run(config, store, "customers_pg", full_refresh=True)
    assert again.ok and again.counts["unchanged"] == 640 and again.counts["updated"] == 0
    with store.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT address->>'city', jsonb_array_length(tags) FROM customers_pg WHERE id = 1"
        ).one()
    assert row[0] and row[1] >= 0
    store.close()


def test_records_copied_as_they_are_still_set_aside_when_they_lack_the_key(tmp_path) -> None:
    """`fields: all` with no filter writes the page's records without a per-record step,
    unless a record lacks the key: then that record alone is recorded as failed."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    items = [{"id": n, "sku": f"s{n}"} for n in range(1, 6)]
    items[1] = {"sku": "no-id"}
    items[3] = {"id": None, "sku": "null-id"}

    async def listing(request: Any) -> JSONResponse:
        return JSONResponse({"data": items})

    with SandboxServer(Starlette(routes=[Route("/items", listing)])) as server:
        config = InterlinkConfig.model_validate(
            {
                "database": f"sqlite:///{tmp_path / 'k.db'}",
                "connections": {"api": {"base_url": server.url}},
                "resources": {
                    "api": {"items": {"path": "/items", "records": "data", "paginate": "single"}}
                },
                "pipelines": {
                    "items": {
                        "source": "api.items",
                        "destination": {"sql": "items"},
                        "fields": "all",
                        "write": "merge",
                    }
                },
            }
        )
        store = Store.open(config.database)
        result = run(config, store, "items")
    assert (result.counts["created"], result.counts["failed"]) == (3, 2)
    assert all("no value for the key id" in error["error"] for error in result.errors)
    assert [row["id"] for row in rows(store, "items")] == [1, 3, 5]
