"""Metrics over live resources, read from the sandbox: the same results as over the table a
pipeline synced from the same records; only the period read when the resource can filter;
the connected account's own records."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import ConfigError
from interlink.metrics import MetricRequest, compute_metric
from interlink.store import Store
from interlink.sync import run_pipeline
from tests import connected_accounts as accounts

from .conftest import SHOP_TOKEN, make_config

pytestmark = pytest.mark.timeout(120)

PERIOD = {"from": "2023-03-01", "to": "2023-05-31"}  # holds Berlin's and Auckland's DST days

METRICS: dict[str, dict[str, Any]] = {
    "count_by_status": {
        "time_field": "created_at",
        "group_by": "status",
        "timezone": "Europe/Berlin",
    },
    "sum_by_currency": {
        "time_field": "created_at",
        "op": "sum",
        "field": "total",
        "group_by": "currency",
        "granularity": "week",
        "timezone": "Pacific/Auckland",
    },
    "avg_total": {"time_field": "updated_at", "op": "avg", "field": "total"},
    "min_total": {
        "time_field": "created_at",
        "op": "min",
        "field": "total",
        "group_by": "status",
        "granularity": "month",
        "timezone": "America/Los_Angeles",
    },
    "max_total": {
        "time_field": "created_at",
        "op": "max",
        "field": "total",
        "group_by": "currency",
    },
    "buyers": {
        "time_field": "created_at",
        "op": "count_distinct",
        "field": "customer_id",
        "group_by": "status",
        "granularity": "week",
    },
    "by_customer": {"time_field": "created_at", "group_by": "customer_id"},
}


def both(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    shared = {**settings, "period": PERIOD}
    return {
        f"{name}_sql": {**shared, "source": "sql:orders"},
        f"{name}_live": {**shared, "source": "shop.orders"},
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


async def test_live_reads_agree_with_the_synced_table(shop, database):
    metrics: dict[str, Any] = {}
    for name, settings in METRICS.items():
        metrics.update(both(name, settings))
    pipelines = {"orders": {"source": "shop.orders", "destination": {"sql": "orders"}}}
    config = make_config(database, metrics, shop_url=shop.url, pipelines=pipelines)
    store = Store.open(config.database)
    try:
        async with Catalog(config) as catalog:
            run = await run_pipeline(config, "orders", store=store, catalog=catalog)
        assert run.status == "succeeded" and run.counts["read"] > 3000
        for name in METRICS:
            table = (await compute_metric(config, store, f"{name}_sql")).to_dict()
            live = (await compute_metric(config, store, f"{name}_live")).to_dict()
            for result in (table, live):
                result.pop("metric"), result.pop("source"), result.pop("live")
                result.pop("previous"), result.pop("next")
            assert table["total"] not in (0, None), name
            assert table["fields"] == live["fields"] or set(table["fields"]) == set(live["fields"])
            table.pop("fields"), live.pop("fields")
            assert table == live, name
        capped = (await compute_metric(config, store, "by_customer_live")).to_dict()
        assert capped["other_groups"] > 0 and capped["series"][-1]["kind"] == "other"
    finally:
        store.close()


async def test_only_the_period_is_read_when_the_resource_filters(shop, sqlite_url):
    settings = {"time_field": "updated_at", "period": {"from": "2024-09-01", "to": "2024-12-31"}}
    metrics = {
        "filtered": {**settings, "source": "shop.orders_changed"},
        "whole": {**settings, "source": "shop.orders"},
        # Its incremental field is updated_at: a metric by created_at reads everything.
        "by_created": {**settings, "source": "shop.orders_changed", "time_field": "created_at"},
    }
    config = make_config(sqlite_url, metrics, shop_url=shop.url)
    store = Store.open(config.database)
    requests = {}
    try:
        for name in metrics:
            httpx.post(f"{shop.url}/_reset")
            results = (await compute_metric(config, store, name)).to_dict()
            stats = httpx.get(f"{shop.url}/_stats").json()
            requests[name] = (stats["requests"], results["total"])
    finally:
        store.close()
    headers = {"Authorization": f"Bearer {SHOP_TOKEN}"}
    everything = httpx.get(f"{shop.url}/orders", params={"limit": 1}, headers=headers).json()
    pages = -(-everything["total"] // 500)
    assert requests["whole"][0] == pages and requests["by_created"][0] == pages
    assert requests["filtered"][0] < pages
    assert requests["filtered"][1] == requests["whole"][1] > 0


async def test_a_live_group_by_must_name_a_field(shop, sqlite_url):
    config = make_config(
        sqlite_url, {"m": {"source": "shop.orders", "time_field": "created_at"}}, shop_url=shop.url
    )
    store = Store.open(config.database)
    try:
        with pytest.raises(ConfigError) as info:
            await compute_metric(config, store, "m", MetricRequest(group_by="colour"))
        assert info.value.key == "group_by" and "no field 'colour'" in info.value.message
    finally:
        store.close()


async def test_a_metric_reads_its_connected_account(sqlite_url):
    with accounts.provider_server() as (provider, server):
        settings = {
            "time_field": "created_at",
            "period": {"from": "2021-12-01", "to": "2025-12-31"},
            "granularity": "month",
        }
        project = accounts.project(sqlite_url, server.url, account="*")
        project["metrics"] = {
            "first": {**settings, "source": "provider.customers", "account": "acct_1001"},
            "second": {**settings, "source": "provider.customers", "account": "acct_1002"},
            "second_table": {
                **settings,
                "source": "sql:customers_{account}",
                "account": "acct_1002",
            },
        }
        config = InterlinkConfig.model_validate(project)
        store = Store.open(config.database)
        try:
            for account in accounts.CUSTOMERS:
                accounts.connect(store, provider, account)

            def catalogs(chosen):
                from interlink.oauth import open_catalog

                return open_catalog(config, store, accounts=chosen)

            for account in accounts.CUSTOMERS:
                await run_pipeline(
                    config, "customers", store=store, catalogs=catalogs, account=account
                )
            first = (await compute_metric(config, store, "first")).to_dict()
            second = (await compute_metric(config, store, "second")).to_dict()
            table = (await compute_metric(config, store, "second_table")).to_dict()
        finally:
            store.close()
    assert (first["total"], second["total"]) == (25, 40)
    assert table["totals"] == second["totals"]
