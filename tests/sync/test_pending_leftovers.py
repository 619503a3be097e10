"""A pending create whose source record is gone is reported, not silently kept.

A create whose answer was lost leaves a pending binding: the target may or may not hold
the record. The next read that finds the source record sends it again with the same
idempotency key and binds it. When the source record has gone meanwhile, nothing ever
reads it again, and the target may keep a record nothing binds. The run that can tell,
a complete whole read, says so in its warnings and keeps the pending row.

Against the real sandbox: a middleware loses the answer of one chosen create (customer
120, the last), and later hides that customer from the shop's list.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlink.sandbox import SandboxServer, create_sandbox_app
from interlink.store import Store, pending_keys

from .test_api_sink import TOKEN, config_for, run
from .test_push_faults import shop_get, without_retry_header


class LosesOneAndHidesIt:
    """Loses the answer to the create of the customer with `email` (a 502 after the
    commerce API created it); with `hide`, leaves customer `hidden_id` out of the shop's
    `GET /customers` pages, its total one less."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.email: str | None = None
        self.hidden_id: int | None = None
        self.hide = False
        self.lost = 0
        self.hidden = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        creating = scope["method"] == "POST" and scope["path"] == "/commerce/api/customers"
        listing = self.hide and scope["method"] == "GET" and scope["path"] == "/shop/customers"
        if not creating and not listing:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        body = b""

        async def keep(message: Message) -> None:
            nonlocal body
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body += message.get("body", b"")

        await self.app(scope, receive, keep)
        if creating and start.get("status") == 201:
            created = orjson.loads(body)["data"]["attributes"]
            if created.get("email") == self.email:
                self.lost += 1
                await send({"type": "http.response.start", "status": 502, "headers": []})
                await send({"type": "http.response.body", "body": b"upstream answer lost"})
                return
        if listing and start.get("status") == 200:
            page = orjson.loads(body)
            kept = [r for r in page["data"] if r["id"] != self.hidden_id]
            if len(kept) < len(page["data"]):
                self.hidden += 1
            page["data"] = kept
            page["total"] -= 1
            body = orjson.dumps(page)
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            start["headers"] = [*headers, (b"content-length", str(len(body)).encode())]
        await send(start)
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def lossy() -> Iterator[tuple[str, LosesOneAndHidesIt]]:
    middleware = LosesOneAndHidesIt(
        create_sandbox_app(records=120, token=TOKEN, commerce_records=20)
    )
    with SandboxServer(middleware) as server:
        middleware.email = shop_get(server.url, 120)["email"]
        middleware.hidden_id = 120
        yield server.url, middleware


def _first_run(url: str, tmp_path: Any) -> tuple[Any, Store]:
    database = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(database)
    config = without_retry_header(config_for(url, database, conflict="source_wins"))
    first = run(config, store)
    assert not first.ok, "the lost answer fails its record"
    with store.transaction() as conn:
        assert pending_keys(conn, "to_commerce") == ["120"]
    return config, store


def test_a_whole_read_reports_a_pending_create_whose_source_is_gone(lossy, tmp_path):
    url, middleware = lossy
    config, store = _first_run(url, tmp_path)
    assert middleware.lost == 1
    middleware.hide = True
    try:
        again = run(config, store, full_refresh=True)
        assert middleware.hidden >= 1, "customer 120 was left out of the read"
        assert again.ok, again.errors
        notes = [w for w in again.warnings if "create(s) sent by an earlier run" in w]
        assert len(notes) == 1, again.warnings
        assert "1 create(s)" in notes[0] and "('120')" in notes[0]
        with store.transaction() as conn:
            assert pending_keys(conn, "to_commerce") == ["120"], "the only trace is kept"
    finally:
        store.close()


def test_a_pending_create_read_again_is_settled_not_reported(lossy, tmp_path):
    url, middleware = lossy
    config, store = _first_run(url, tmp_path)
    middleware.email = None  # the API answers now
    try:
        again = run(config, store, full_refresh=True)
        assert again.ok, again.errors
        assert not [w for w in again.warnings if "sent by an earlier run" in w], again.warnings
        with store.transaction() as conn:
            assert pending_keys(conn, "to_commerce") == []
    finally:
        store.close()
