"""Conflict detection after an update the API answered without a body (204 No Content).

The sandbox suite, behind a small ASGI wrapper that turns commerce's PATCH answers into
204s with no body (and, in the lagging-reads variant, answers the first read of a record
after its update with a 404 until the next listing, as an API whose reads lag behind its
writes would). A pipeline with `conflict: manual` must still see that someone else edited
the target after interlink's update, and park the pair instead of writing over that edit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.sandbox import SandboxServer, create_sandbox_app
from interlink.store import Store, list_conflicts
from interlink.sync import RunResult, run_pipeline

from .test_api_sink import FIELDS, TOKEN, Commerce, shop_patch

CUSTOMERS = "/commerce/api/customers/"


class Bodiless:
    """Answers every successful PATCH of a commerce customer with 204 and no body.

    With `lagging_reads`, the first GET of a customer after its update is a 404, until
    the customers are listed (reads have caught up with the writes then).
    """

    def __init__(self, app: ASGIApp, *, lagging_reads: bool = False) -> None:
        self.app = app
        self.lagging_reads = lagging_reads
        self.lagging: set[str] = set()
        self.patches = 0
        self.refused_reads = 0
        self.pass_through = False  # the test's own edits, as another user of the API

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CUSTOMERS.rstrip("/"):
            self.lagging.clear()  # a listing shows every update: reads have caught up
        if scope["type"] != "http" or not scope["path"].startswith(CUSTOMERS) or self.pass_through:
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path in self.lagging:
            self.lagging.discard(path)
            self.refused_reads += 1
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"application/vnd.api+json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"errors": [{"status": "404"}]}'})
            return
        if method != "PATCH":
            await self.app(scope, receive, send)
            return
        swallow = False

        async def bodiless(message: Message) -> None:
            nonlocal swallow
            if message["type"] == "http.response.start" and message["status"] == 200:
                swallow = True
                self.patches += 1
                if self.lagging_reads:
                    self.lagging.add(path)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 204,
                        "headers": [(b"content-length", b"0")],
                    }
                )
            elif message["type"] == "http.response.body" and swallow:
                if not message.get("more_body"):
                    await send({"type": "http.response.body", "body": b""})
            else:
                await send(message)

        await self.app(scope, receive, bodiless)


def config_for(url: str, database: str, *, target_stamp: bool) -> InterlinkConfig:
    # Without a source timestamp the source version is a hash of the mapped fields: the
    # shop's updated_at has one-second resolution, and the test edits faster than that.
    timestamps = {"target": "updated_at"} if target_stamp else {}
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
                    "conflict": "manual",
                    "timestamps": timestamps,
                }
            },
        }
    )


def run(config: InterlinkConfig, store: Store) -> RunResult:
    async def go() -> RunResult:
        async with Catalog(config) as catalog:
            return await run_pipeline(config, "to_commerce", store=store, catalog=catalog)

    result = asyncio.run(go())
    assert result.ok, (result.errors, result.message)
    return result


@pytest.fixture(params=[False, True], ids=["plain", "lagging-reads"])
def suite(request: pytest.FixtureRequest) -> Iterator[tuple[str, Bodiless]]:
    app = Bodiless(create_sandbox_app(records=30, token=TOKEN), lagging_reads=request.param)
    with SandboxServer(app) as server:
        yield server.url, app


def shop_email(url: str, id: int) -> str:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    email: str = httpx.get(f"{url}/shop/customers/{id}", headers=headers).json()["email"]
    return email


@pytest.mark.parametrize("target_stamp", [False, True], ids=["hash", "timestamp"])
def test_a_target_edit_after_a_bodiless_update_is_parked(
    suite: tuple[str, Bodiless], tmp_path: Any, target_stamp: bool
) -> None:
    url, app = suite
    database = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(database)
    config = config_for(url, database, target_stamp=target_stamp)
    commerce = Commerce(url)
    assert run(config, store).counts["created"] == 30

    # Customers 5 and 6 change in the shop: both updated, the API answers 204.
    shop_patch(url, 5, company="Shop One")
    shop_patch(url, 6, company="Shop One")
    second = run(config, store)
    assert second.counts["updated"] == 2 and app.patches == 2

    if target_stamp:
        time.sleep(1.1)  # commerce's updated_at has one-second resolution
    # Someone edits customer 5 in commerce; the shop changes 5 and 6 again.
    by_email = {r["attributes"]["email"]: r for r in commerce.all()}
    five = by_email[shop_email(url, 5)]
    app.pass_through = True
    commerce.patch(five["id"], company="Commerce Edit")
    app.pass_through = False
    shop_patch(url, 5, company="Shop Two")
    shop_patch(url, 6, company="Shop Two")
    third = run(config, store)

    parked = list_conflicts(store.engine, "to_commerce")
    assert [(c["source_key"], c["target_key"]) for c in parked] == [("5", five["id"])]
    assert third.counts["updated"] == 1 and third.counts["skipped"] == 1, third.counts
    by_email = {r["attributes"]["email"]: r for r in commerce.all()}
    assert by_email[shop_email(url, 5)]["attributes"]["company"] == "Commerce Edit"
    assert by_email[shop_email(url, 6)]["attributes"]["company"] == "Shop Two"
    # With lagging reads, every read back after an update failed: the versions bound were
    # the written fields' values, and customer 6 (not edited in commerce) was still written.
    assert app.refused_reads == (3 if app.lagging_reads else 0)  # 5 and 6, then 6
    store.close()
