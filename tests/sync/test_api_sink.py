"""Pipelines into an API: bindings, match, conflicts, idempotent creates (sandbox suite)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.sandbox import SandboxServer, create_sandbox_app
from interlink.store import Store, list_conflicts
from interlink.sync import ApiSink, RunResult, compile_mapping, decide, newer, run_pipeline

TOKEN = "sandbox-token"
FIELDS = {
    "email": "email",
    "first_name": "first_name",
    "last_name": "last_name",
    "company": "company",
    "city": "address.city",
}


def config_for(url: str, database: str, **pipeline: Any) -> InterlinkConfig:
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
                    "fields": FIELDS,
                    "match": ["email"],
                    "conflict": "newest_wins",
                    "timestamps": {"source": "updated_at", "target": "updated_at"},
                    **pipeline,
                }
            },
        }
    )


def run(config: InterlinkConfig, store: Store, **kwargs: Any) -> RunResult:
    async def go() -> RunResult:
        async with Catalog(config) as catalog:
            return await run_pipeline(config, "to_commerce", store=store, catalog=catalog, **kwargs)

    return asyncio.run(go())


@pytest.fixture
def suite() -> Iterator[str]:
    app = create_sandbox_app(records=260, token=TOKEN, commerce_records=40, commerce_overlap=15)
    with SandboxServer(app) as server:
        yield server.url


class Commerce:
    """Direct access to the commerce sandbox, as another user of it would have."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/commerce"
        token = httpx.post(
            f"{self.url}/oauth2-token",
            data={"grant_type": "client_credentials"},
            auth=("commerce-client", "commerce-secret"),
        ).json()["access_token"]
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/vnd.api+json",
        }

    def all(self) -> list[dict[str, Any]]:
        out, page = [], 1
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

    def patch(self, id: str, **attributes: Any) -> None:
        doc = {"data": {"type": "customers", "id": id, "attributes": attributes}}
        response = httpx.patch(f"{self.url}/api/customers/{id}", json=doc, headers=self.headers)
        response.raise_for_status()

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = httpx.get(f"{self.url}/_stats").json()
        return stats


def shop_patch(url: str, id: int, **fields: Any) -> None:
    httpx.patch(
        f"{url}/shop/customers/{id}", json=fields, headers={"Authorization": f"Bearer {TOKEN}"}
    ).raise_for_status()


def test_sync_creates_binds_by_email_and_moves_only_changes(suite, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    config = config_for(suite, f"sqlite:///{tmp_path / 'state.db'}")
    commerce = Commerce(suite)

    first = run(config, store)
    assert first.ok, first.errors
    assert first.counts["created"] == 260 - 15
    assert first.counts["updated"] + first.counts["skipped"] == 15, first.counts
    records = commerce.all()
    assert len(records) == 40 + 245, "matched customers were bound, not duplicated"
    emails = [r["attributes"]["email"] for r in records]
    assert len(set(emails)) == len(emails)

    second = run(config, store)
    assert second.ok
    assert second.counts["created"] == 0 and second.counts["updated"] == 0

    # Change one customer in the shop, another only in commerce.
    shop_patch(suite, 5, company="Shop Side Ltd")
    by_email = {r["attributes"]["email"]: r for r in commerce.all()}
    shop_six = httpx.get(
        f"{suite}/shop/customers/6", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    commerce.patch(by_email[shop_six["email"]]["id"], company="Commerce Side Ltd")
    third = run(config, store)
    assert third.ok and third.counts["updated"] == 1 and third.counts["created"] == 0
    by_email = {r["attributes"]["email"]: r for r in commerce.all()}
    assert by_email[shop_six["email"]]["attributes"]["company"] == "Commerce Side Ltd"
    shop_five = httpx.get(
        f"{suite}/shop/customers/5", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    assert by_email[shop_five["email"]]["attributes"]["company"] == "Shop Side Ltd"
    # Fields outside `fields` are never written: phone is not mapped, so a customer the
    # sync created has none although the shop has one.
    shop_hundred = httpx.get(
        f"{suite}/shop/customers/100", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    assert shop_hundred["phone"]
    assert not by_email[shop_hundred["email"]]["attributes"].get("phone")

    # Both sides change customer 7: commerce last, so newest_wins keeps commerce's.
    shop_patch(suite, 7, company="Shop Seven")
    shop_seven = httpx.get(
        f"{suite}/shop/customers/7", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    import time

    time.sleep(1.1)  # timestamps have one-second resolution
    commerce.patch(by_email[shop_seven["email"]]["id"], company="Commerce Seven")
    fourth = run(config, store)
    assert fourth.ok and fourth.counts["updated"] == 0 and fourth.counts["skipped"] >= 1
    by_email = {r["attributes"]["email"]: r for r in commerce.all()}
    assert by_email[shop_seven["email"]]["attributes"]["company"] == "Commerce Seven"
    store.close()


def test_manual_conflicts_are_parked(suite, tmp_path):
    database = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(database)
    config = config_for(suite, database, conflict="manual")
    first = run(config, store)
    assert first.ok
    # The 15 matched customers had data on both sides: parked for a person to settle.
    parked = list_conflicts(store.engine, "to_commerce")
    assert len(parked) == 15
    assert first.counts["skipped"] == 15 and first.counts["created"] == 245
    one = parked[0]
    assert one["source_record"]["email"] == one["target_record"]["email"]
    store.close()


@pytest.fixture
def fresh_suite() -> Iterator[str]:
    app = create_sandbox_app(records=260, token=TOKEN, commerce_records=40)
    with SandboxServer(app) as server:
        yield server.url


def test_replayed_batch_creates_nothing_twice(fresh_suite, tmp_path):
    """A crash after the writes and before the commit replays the batch: the idempotency
    keys make the API answer with the records it already created."""
    suite = fresh_suite
    database = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(database)
    config = config_for(suite, database, match=[], conflict="source_wins")
    commerce = Commerce(suite)

    async def write_without_commit() -> None:
        async with Catalog(config) as catalog:
            source = catalog.resource("shop.customers")
            records = [r async for r in source.records(limit=50)]
            sink = ApiSink(
                store,
                "to_commerce",
                config.pipelines["to_commerce"],
                catalog.writable("commerce.customers"),
                source_key="id",
                fields=list(FIELDS),
            )
            mapping = compile_mapping(FIELDS, where="test")
            outcome = await sink.write([(r, mapping(r)) for r in records])
            assert outcome.created == 50 and not outcome.failures
            # ... and the process dies here: no bindings, no checkpoint committed.

    asyncio.run(write_without_commit())
    assert commerce.stats()["creates"] == 50
    result = run(config, store)
    assert result.ok and result.counts["created"] == 260
    stats = commerce.stats()
    assert stats["creates"] == 260, "the 50 replays were answered from the idempotency keys"
    assert stats["idempotent_replays"] >= 50
    assert len(commerce.all()) == 40 + 260
    store.close()


def test_decide_and_newer():
    assert decide("source_wins", source_changed=False, target_changed=True) == "keep"
    assert decide("target_wins", source_changed=True, target_changed=False) == "write"
    assert decide("source_wins", source_changed=True, target_changed=True) == "write"
    assert decide("target_wins", source_changed=True, target_changed=True) == "keep"
    assert decide("manual", source_changed=True, target_changed=True) == "park"
    assert (
        decide(
            "newest_wins",
            source_changed=True,
            target_changed=True,
            source_time="2026-01-02T00:00:00Z",
            target_time="2026-01-01T23:00:00+00:00",
        )
        == "write"
    )
    assert newer("2026-01-01T00:00:00+01:00", "2025-12-31T23:30:00Z") is False
    assert newer(None, "2026-01-01") is False and newer("x", None) is True
    with pytest.raises(ValueError):
        decide("coin_flip", source_changed=True, target_changed=True)
