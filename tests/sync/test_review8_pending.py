"""Review 8: pending creates at an API destination, attacked.

A pending create is one whose answer was never bound: the next run sends it again with
the same key and body. These tests lose a create's answer, then make the next run go
wrong in other ways, and check that the record is still created exactly once.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from interlink.sandbox import SandboxServer, create_sandbox_app
from interlink.store import Store, load_bindings

from .test_api_sink import TOKEN, Commerce, config_for, run, shop_patch
from .test_push_faults import LosesAnswers, shop_get, without_retry_header


class Refuses:
    """Answers every POST and PATCH to commerce customers with `status` while `on`
    (a key whose write scope was withdrawn for a while, a maintenance window)."""

    def __init__(self, app: ASGIApp, status: int) -> None:
        self.app = app
        self.status = status
        self.on = False
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        writing = (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PATCH")
            and scope["path"].startswith("/commerce/api/customers")
        )
        if not (self.on and writing):
            await self.app(scope, receive, send)
            return
        self.refused += 1
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b'{"errors": [{"title": "no"}]}'})


class FailsUpdates:
    """Answers PATCHes to commerce customers with a 500 while `on`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.on = False
        self.failed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        patching = (
            scope["type"] == "http"
            and scope["method"] == "PATCH"
            and scope["path"].startswith("/commerce/api/customers/")
        )
        if not (self.on and patching):
            await self.app(scope, receive, send)
            return
        self.failed += 1
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"boom"})


def lost_email_shop_id(url: str, email: str) -> int:
    return next(i for i in range(1, 121) if shop_get(url, i)["email"] == email)


def test_a_403_to_the_replayed_create_keeps_the_pending_create(tmp_path):
    """Run 1 creates a customer whose answer is lost; the source then changes it; run 2
    meets a 403 on every write (nothing acted on, and nothing said about the first
    create). Run 3 must bind the customer created by run 1, not create a second one."""
    app = create_sandbox_app(records=120, token=TOKEN, commerce_records=20)
    lossy = LosesAnswers(app, lose=1)
    gate = Refuses(lossy, 403)
    with SandboxServer(gate) as server:
        database = f"sqlite:///{tmp_path / 'state.db'}"
        store = Store.open(database)
        config = without_retry_header(
            config_for(server.url, database, match=[], conflict="source_wins")
        )
        first = run(config, store)
        assert lossy.lost and not first.ok, "the fault did not fire"
        shop_id = lost_email_shop_id(server.url, lossy.lost[0])
        shop_patch(server.url, shop_id, company="Changed Meanwhile")
        gate.on = True
        second = run(config, store)
        assert gate.refused and not second.ok, "the 403 did not fire"
        pending = load_bindings(store.engine, "to_commerce", [str(shop_id)])
        assert str(shop_id) in pending, "a 403 to the replay dropped the pending create"
        gate.on = False
        third = run(config, store, full_refresh=True)
        assert third.ok, third.errors
        records = Commerce(server.url).all()
        emails = [r["attributes"]["email"] for r in records]
        assert emails.count(lossy.lost[0]) == 1, "the customer was created twice"
        assert len(records) == 20 + 120
        (one,) = [r for r in records if r["attributes"]["email"] == lossy.lost[0]]
        assert one["attributes"]["company"] == "Changed Meanwhile"
        store.close()


def test_a_replayed_create_whose_update_fails_is_bound(tmp_path):
    """The replay creates (or finds) the customer, then the update carrying the source's
    later change fails. The created customer's key is known: it must be bound, so the next
    run updates it instead of sending the create again (an API that does not honour keys
    would create it twice)."""
    app = create_sandbox_app(records=120, token=TOKEN, commerce_records=20)
    lossy = LosesAnswers(app, lose=1, ignore_keys=False)
    gate = FailsUpdates(lossy)
    with SandboxServer(gate) as server:
        database = f"sqlite:///{tmp_path / 'state.db'}"
        store = Store.open(database)
        config = without_retry_header(
            config_for(server.url, database, match=[], conflict="source_wins")
        )
        first = run(config, store)
        assert lossy.lost and not first.ok, "the fault did not fire"
        shop_id = lost_email_shop_id(server.url, lossy.lost[0])
        shop_patch(server.url, shop_id, company="Changed Meanwhile")
        gate.on = True
        second = run(config, store)
        assert gate.failed and not second.ok, "the update fault did not fire"
        (binding,) = load_bindings(store.engine, "to_commerce", [str(shop_id)]).values()
        assert not binding.pending, "the replayed create's answer was not bound"
        (one,) = [
            r for r in Commerce(server.url).all() if r["attributes"]["email"] == lossy.lost[0]
        ]
        assert binding.target_key == one["id"]
        gate.on = False
        third = run(config, store, full_refresh=True)
        assert third.ok, third.errors
        records = Commerce(server.url).all()
        assert len(records) == 20 + 120
        (one,) = [r for r in records if r["attributes"]["email"] == lossy.lost[0]]
        assert one["attributes"]["company"] == "Changed Meanwhile"
        store.close()
