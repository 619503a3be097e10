"""Import by id (`run_records`) against the sandbox: into SQLite, PostgreSQL and an API."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import ConfigError, JobCancelledError, PipelineLockedError, ServerError
from interlink.sandbox import SandboxServer, create_sandbox_app, create_shop_app
from interlink.store import Store, load_bindings
from interlink.sync import RunResult, check_records, run_pipeline, run_records

TOKEN = "records-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


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
                        "paginate": {"type": "page", "page_size": 50},
                    },
                    "orders_by_id": {
                        "path": "/customers/{parent.id}/orders",
                        "item_path": "/orders/{id}",
                        "parent": "customers",
                        "parent_key": "customer_id",
                        "records": "orders",
                        "paginate": {"type": "page", "page_size": 50},
                    },
                    "products": {
                        "type": "graphql",
                        "query": "query { products { id } }",
                        "records": "data.products",
                        "paginate": "single",
                    },
                }
            },
            "pipelines": pipelines,
        }
    )


def customers(table: str = "customers", **extra: Any) -> dict[str, Any]:
    return {"source": "shop.customers", "destination": {"sql": table}, **extra}


def by_id(
    config: InterlinkConfig, store: Store, name: str, ids: list[Any], **kwargs: Any
) -> RunResult:
    async def go() -> RunResult:
        async with Catalog(config) as catalog:
            return await run_records(config, name, ids, store=store, catalog=catalog, **kwargs)

    return asyncio.run(go())


def run(config: InterlinkConfig, store: Store, name: str, **kwargs: Any) -> RunResult:
    async def go() -> RunResult:
        async with Catalog(config) as catalog:
            return await run_pipeline(config, name, store=store, catalog=catalog, **kwargs)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def shop() -> Iterator[SandboxServer]:
    with SandboxServer(create_shop_app(records=640, seed=11, token=TOKEN)) as server:
        yield server


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'interlink.db'}"


def rows(store: Store, table: str) -> dict[Any, dict[str, Any]]:
    with store.engine.connect() as conn:
        result = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")
        return {r.id: dict(r._mapping) for r in result}


def same(row: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether a table row holds exactly the record (JSON columns read back as objects)."""
    decoded = {
        key: json.loads(value)
        if isinstance(value, str) and isinstance(record.get(key), dict | list)
        else value
        for key, value in row.items()
    }
    return decoded == record


def customer(shop: SandboxServer, id: int) -> dict[str, Any]:
    answer = httpx.get(f"{shop.url}/customers/{id}", headers=HEADERS)
    answer.raise_for_status()
    record: dict[str, Any] = answer.json()
    return record


def patch(shop: SandboxServer, id: int, **fields: Any) -> None:
    httpx.patch(f"{shop.url}/customers/{id}", json=fields, headers=HEADERS).raise_for_status()


def test_a_changed_record_is_written_and_nothing_else(shop, sqlite_url):
    config = make_config(shop.url, sqlite_url, {"customers": customers()})
    store = Store.open(config.database)
    assert run(config, store, "customers").ok
    before = rows(store, "customers")
    state = store.load_state("customers")
    patch(shop, 33, company="Fetched By Id Ltd")
    patch(shop, 34, company="Left For The Next Run")
    httpx.post(f"{shop.url}/_touch", json={"resource": "customers", "ids": [35]})

    result = by_id(config, store, "customers", [33])

    assert result.ok, (result.status, result.errors, result.message)
    assert result.counts["read"] == 1 and result.counts["updated"] == 1, result.counts
    assert result.counts["created"] == 0 and result.counts["failed"] == 0
    after = rows(store, "customers")
    assert same(after[33], customer(shop, 33))
    assert after[33]["company"] == "Fetched By Id Ltd"
    del after[33], before[33]
    assert after == before, "only the record asked for changed"
    assert store.load_state("customers") == state, "the cursor and checkpoint did not move"
    row = store.runs("customers")[0]
    assert row["id"] == result.run_id and row["status"] == "succeeded"
    assert row["updated"] == 1 and row["read"] == 1
    assert row["warnings"][0].startswith("a run by id (33):")

    # The cursor stayed where the first run left it: the next run still sees 34 and 35.
    following = run(config, store, "customers")
    assert following.ok and following.counts["updated"] == 2, following.counts
    assert rows(store, "customers")[34]["company"] == "Left For The Next Run"
    store.close()


def test_an_unknown_id_is_a_failed_record_and_the_others_go_on(shop, sqlite_url):
    config = make_config(shop.url, sqlite_url, {"customers": customers()})
    store = Store.open(config.database)
    result = by_id(config, store, "customers", [12, "999999", 13, 12])
    assert result.status == "completed_with_errors" and not result.ok
    assert result.counts["read"] == 2 and result.counts["created"] == 2
    assert result.counts["failed"] == 1
    assert result.ids == ["12", "999999", "13"], "each id once, in order"
    (error,) = result.errors
    assert error["key"] == "999999" and error["step"] == "fetch"
    assert "NotFoundError" in error["error"] and "404" in error["error"]
    stored = store.record_errors(result.run_id)
    assert [(e["record_key"], e["step"]) for e in stored] == [("999999", "fetch")]
    assert sorted(rows(store, "customers")) == [12, 13]
    row = store.run(result.run_id)
    assert row is not None and row["status"] == "completed_with_errors" and row["failed"] == 1
    store.close()


def test_a_locked_pipeline_is_refused(shop, sqlite_url):
    config = make_config(shop.url, sqlite_url, {"customers": customers()})
    store = Store.open(config.database)
    holder = store.begin_run("customers")
    with pytest.raises(PipelineLockedError, match="already running"):
        by_id(config, store, "customers", [1])
    assert [r["id"] for r in store.runs("customers")] == [holder], "no run row was left"
    assert not sa.inspect(store.engine).has_table("customers"), "nothing was written"
    store.finish_run("customers", holder, status="succeeded", counts={}, errors=[])
    assert by_id(config, store, "customers", [1]).ok
    store.close()


def test_an_interrupted_replace_keeps_its_staging_table(shop, sqlite_url):
    """A run by id upserts into the live table of a `replace` pipeline; the staging table of
    an interrupted full read stays, and that read resumes and swaps in as before."""
    config = make_config(
        shop.url,
        sqlite_url,
        {"copy": customers("copy", write="replace", incremental=False)},
    )
    store = Store.open(config.database)
    assert run(config, store, "copy").ok
    with pytest.raises(JobCancelledError):
        run(config, store, "copy", should_stop=lambda: True)
    interrupted = store.load_state("copy")
    assert interrupted.interrupted and interrupted.staged
    assert sa.inspect(store.engine).has_table("interlink_stage_copy")
    patch(shop, 250, company="Into The Live Table")

    result = by_id(config, store, "copy", [250])

    assert result.ok and result.counts["updated"] == 1, (result.counts, result.errors)
    assert rows(store, "copy")[250]["company"] == "Into The Live Table"
    assert sa.inspect(store.engine).has_table("interlink_stage_copy"), "staging was kept"
    assert store.load_state("copy") == interrupted
    assert any("unfinished" in w for w in result.warnings), result.warnings
    resumed = run(config, store, "copy")
    assert resumed.ok and resumed.resumed
    assert len(rows(store, "copy")) == 640
    assert not sa.inspect(store.engine).has_table("interlink_stage_copy")
    store.close()


def test_an_interrupted_full_read_keeps_its_seen_keys(shop, sqlite_url):
    config = make_config(shop.url, sqlite_url, {"soft": customers("soft", deletes="soft")})
    store = Store.open(config.database)
    with pytest.raises(JobCancelledError):
        run(config, store, "soft", should_stop=lambda: True)
    assert sa.inspect(store.engine).has_table("interlink_seen_soft")

    result = by_id(config, store, "soft", [500, 999999])

    assert result.counts["created"] == 1 and result.counts["deleted"] == 0
    assert sa.inspect(store.engine).has_table("interlink_seen_soft")
    assert rows(store, "soft")[500]["_deleted_at"] is None
    resumed = run(config, store, "soft")
    assert resumed.ok and resumed.counts["deleted"] == 0
    assert [r for r in rows(store, "soft").values() if r["_deleted_at"]] == []
    store.close()


def test_filter_dry_run_and_batches(shop, sqlite_url):
    config = make_config(shop.url, sqlite_url, {"few": customers("few", filter="id <= 300")})
    store = Store.open(config.database)
    left = by_id(config, store, "few", [400, 20])
    assert left.ok and left.counts["skipped"] == 1 and left.counts["created"] == 1
    assert any(w.endswith("not written: 400") for w in left.warnings), left.warnings
    assert sorted(rows(store, "few")) == [20]

    dry = by_id(config, store, "few", [21], dry_run=True)
    assert dry.ok and dry.would_write == 1 and dry.dry_run
    assert sorted(rows(store, "few")) == [20]

    asked = list(range(101, 251))
    with pytest.raises(JobCancelledError, match="stopped after 100 of 150 ids"):
        by_id(config, store, "few", asked, should_stop=lambda: True)
    assert sorted(rows(store, "few")) == [20, *range(101, 201)]
    assert store.runs("few")[0]["status"] == "cancelled"
    store.close()


def test_sources_that_cannot_be_fetched_by_id_are_refused(shop, sqlite_url):
    config = make_config(
        shop.url,
        sqlite_url,
        {
            "products": {"source": "shop.products", "destination": "sql:products"},
            "orders": {"source": "shop.orders", "destination": "sql:orders"},
            "orders_by_id": {"source": "shop.orders_by_id", "destination": "sql:orders_by_id"},
        },
    )
    with pytest.raises(ConfigError, match=r"pipelines\.products\.source: .* graphql resource"):
        check_records(config, "products")
    with pytest.raises(ConfigError, match=r"pipelines\.orders\.source: .* through its parent"):
        check_records(config, "orders")
    with pytest.raises(ConfigError, match="unknown pipeline 'nope'"):
        check_records(config, "nope")
    for bad in ([], [""], [".."], [True], [1.5]):
        with pytest.raises(ConfigError):
            check_records(config, "orders_by_id", bad)
    check_records(config, "orders_by_id", ["7"])

    store = Store.open(config.database)
    with pytest.raises(ConfigError, match="graphql"):
        by_id(config, store, "products", [1])
    assert store.runs("products") == [], "refused before a run began"
    # A child resource with an item_path of its own: the record carries its parent's key.
    listing = httpx.get(f"{shop.url}/orders", params={"limit": 1}, headers=HEADERS).json()
    order_id = listing["data"][0]["id"]
    result = by_id(config, store, "orders_by_id", [order_id])
    assert result.ok, result.errors
    order = httpx.get(f"{shop.url}/orders/{order_id}", headers=HEADERS).json()
    assert same(rows(store, "orders_by_id")[order_id], order)
    assert order["customer_id"]
    store.close()


def item_app(answers: dict[str, tuple[int, Any]]) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def item(request: Any) -> JSONResponse:
        status, body = answers[request.path_params["id"]]
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/items/{id}", item)])


def items_config(url: str, database: str, **resource: Any) -> InterlinkConfig:
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {"api": {"base_url": url, "retry": {"max_attempts": 2, "base": "10ms"}}},
            "resources": {"api": {"items": {"path": "/items", **resource}}},
            "pipelines": {"items": {"source": "api.items", "destination": "sql:items"}},
        }
    )


def test_what_the_answer_holds(sqlite_url):
    answers = {
        "1": (200, {"data": {"id": 1, "sku": "wrapped"}}),
        "2": (200, {"id": 2, "sku": "bare"}),
        "3": (200, {"status": "error", "message": "export disabled"}),
        "4": (200, {"sku": "no key"}),
    }
    with SandboxServer(item_app(answers)) as server:
        config = items_config(server.url, sqlite_url, error={"path": "status", "value": "error"})
        store = Store.open(config.database)
        result = by_id(config, store, "items", [1, 2, 3, 4])
    assert result.counts["created"] == 2 and result.counts["failed"] == 2, result.errors
    failures = {e["key"]: e["error"] for e in result.errors}
    assert "the API reported an error: export disabled" in failures["3"]
    assert "has no 'id'" in failures["4"]
    assert [r["sku"] for r in rows(store, "items").values()] == ["wrapped", "bare"]
    store.close()


def test_a_source_that_fails_fails_the_run(sqlite_url):
    answers = {"1": (200, {"id": 1}), "2": (503, {"error": "down"})}
    with SandboxServer(item_app(answers)) as server:
        config = items_config(server.url, sqlite_url)
        store = Store.open(config.database)
        with pytest.raises(ServerError):
            by_id(config, store, "items", [1, 2])
    row = store.runs("items")[0]
    assert row["status"] == "failed" and "503" in row["message"]
    assert not sa.inspect(store.engine).has_table("items"), "nothing of the batch was written"
    store.close()


@pytest.mark.postgres
def test_into_postgresql(shop, postgres_url):
    name = f"records_{uuid.uuid4().hex[:10]}"
    config = make_config(shop.url, postgres_url, {name: customers(name)})
    store = Store.open(config.database)
    try:
        assert run(config, store, name, limit=150).counts["created"] == 150
        before = rows(store, name)
        patch(shop, 77, company="Postgres By Id")
        result = by_id(config, store, name, [77, 600, 999999])
        assert result.counts == {
            **result.counts,
            "read": 2,
            "updated": 1,
            "created": 1,
            "failed": 1,
        }
        after = rows(store, name)
        assert same(after[77], customer(shop, 77)) and same(after[600], customer(shop, 600))
        del after[77], after[600], before[77]
        assert after == before
        assert store.load_state(name).cursor is None
    finally:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
            conn.exec_driver_sql(f"DELETE FROM interlink_state WHERE pipeline = '{name}'")
        store.close()


# -- an API destination ------------------------------------------------------------------


def commerce_config(url: str, database: str) -> InterlinkConfig:
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {
                "shop": {"base_url": f"{url}/shop", "auth": {"type": "bearer", "token": TOKEN}},
                "commerce": {
                    "base_url": f"{url}/commerce",
                    "auth": {
                        "type": "oauth2_client_credentials",
                        "token_url": "oauth2-token",
                        "client_id": "commerce-client",
                        "client_secret": "commerce-secret",
                    },
                    "retry": {"idempotency_header": "Idempotency-Key"},
                },
            },
            "resources": {
                "shop": {
                    "customers": {
                        "path": "/customers",
                        "records": "data",
                        "paginate": {"type": "offset", "page_size": 100},
                        "incremental": {"field": "updated_at", "param": "updated_since"},
                    }
                },
                "commerce": {
                    "customers": {
                        "path": "/api/customers",
                        "format": "jsonapi",
                        "params": {"page[size]": 100},
                        "paginate": {"type": "next_url", "next_path": "links.next"},
                    }
                },
            },
            "pipelines": {
                "to_commerce": {
                    "source": "shop.customers",
                    "destination": "commerce.customers",
                    "fields": {
                        "email": "email",
                        "first_name": "first_name",
                        "last_name": "last_name",
                        "company": "company",
                        "external_id": "shop-{id}",
                    },
                    "match": "email",
                    "conflict": "newest_wins",
                    "timestamps": {"source": "updated_at", "target": "updated_at"},
                }
            },
        }
    )


class Commerce:
    def __init__(self, url: str) -> None:
        self.url = f"{url}/commerce"
        token = httpx.post(
            f"{self.url}/oauth2-token",
            data={"grant_type": "client_credentials"},
            auth=("commerce-client", "commerce-secret"),
        ).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def all(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = httpx.get(
                f"{self.url}/api/customers",
                params={"page[number]": page, "page[size]": 100},
                headers=self.headers,
            ).json()
            out += body["data"]
            if "next" not in body["links"]:
                return out
            page += 1

    def by_email(self, email: str) -> list[dict[str, Any]]:
        return [r for r in self.all() if r["attributes"]["email"] == email]


@pytest.fixture
def suite() -> Iterator[str]:
    app = create_sandbox_app(records=80, token=TOKEN, commerce_records=20, commerce_overlap=5)
    with SandboxServer(app) as server:
        yield server.url


def test_an_api_destination_writes_through_bindings(suite, tmp_path):
    database = f"sqlite:///{tmp_path / 'state.db'}"
    config = commerce_config(suite, database)
    store = Store.open(database)
    commerce = Commerce(suite)
    shop = f"{suite}/shop"

    first = by_id(config, store, "to_commerce", [60])
    assert first.ok and first.counts["created"] == 1, (first.counts, first.errors)
    email = httpx.get(f"{shop}/customers/60", headers=HEADERS).json()["email"]
    (created,) = commerce.by_email(email)
    assert created["attributes"]["external_id"] == "shop-60"
    bound = load_bindings(store.engine, "to_commerce", ["60"])
    assert bound["60"].target_key == created["id"]

    httpx.patch(f"{shop}/customers/60", json={"company": "Second Import"}, headers=HEADERS)
    second = by_id(config, store, "to_commerce", [60])
    assert second.ok and second.counts["updated"] == 1 and second.counts["created"] == 0
    (updated,) = commerce.by_email(email)
    assert updated["id"] == created["id"], "updated in place, not created again"
    assert updated["attributes"]["company"] == "Second Import"
    assert len(commerce.all()) == 21

    third = by_id(config, store, "to_commerce", [60])
    assert third.ok and third.counts["unchanged"] == 1

    # Shop customer 3 shares its email with a commerce customer: bound by `match`, not
    # created; both sides have data, so newest_wins settles it.
    matched = by_id(config, store, "to_commerce", [3])
    assert matched.ok and matched.counts["created"] == 0, matched.counts
    assert len(commerce.all()) == 21
    assert "3" in load_bindings(store.engine, "to_commerce", ["3"])

    gone = by_id(config, store, "to_commerce", [999999])
    assert gone.status == "completed_with_errors" and gone.errors[0]["key"] == "999999"
    assert len(commerce.all()) == 21
    assert store.load_state("to_commerce").cursor is None
    store.close()
