"""Deliveries held while a connection they need is switched off (webhooks/_held.py): the
receiver stores them (a GitHub delivery refused is never sent again), the worker leaves
them `held` without spending an attempt or touching the API, and switching on (the
function, the API, the CLI) queues them; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from interlink.cli.main import app as cli_app
from interlink.config import InterlinkConfig
from interlink.errors import ConnectionDisabledError
from interlink.jobs import JobFilter, Queue, open_queue
from interlink.oauth import switch_off
from interlink.sandbox import SandboxServer, create_shop_app
from interlink.server import create_app
from interlink.store import (
    Store,
    create_api_key,
    deliveries,
    disable,
    enable,
    get_delivery,
    requeue_delivery,
)
from interlink.webhooks import (
    Arrival,
    Inbox,
    _held as held_module,
    batch_job,
    job_kinds,
    release_held,
    replay,
    sign,
    switch_on_releasing,
)
from interlink.webhooks._held import hold
from tests.jobs.procrastinate_schema import fresh_schema

TOKEN = "held-shop-token"
SECRET = "held-hook-secret"
CALLS: list[str] = []


SWITCHING: list[Store] = []


def noop(event: Any) -> None:
    """A handler that needs no connection."""


def switches_crm_off(event: Any) -> None:
    """A handler that switches crm off as it works (what an operator may do meanwhile)."""
    CALLS.append(event.delivery_id)
    with SWITCHING[0].transaction() as conn:
        disable(conn, "crm", reason="mid-batch", by="test")


def refused_by_crm(event: Any) -> None:
    """A handler whose work goes through crm's account acct_1: refused while it is off."""
    CALLS.append(event.delivery_id)
    raise ConnectionDisabledError("crm", "acct_1", reason="customer left")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'held.db'}"
        return
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_held") as url:
        yield url


@pytest.fixture(scope="module")
def shop() -> Iterator[SandboxServer]:
    with SandboxServer(create_shop_app(records=120, seed=5, token=TOKEN)) as server:
        yield server


def project(database: str, shop_url: str) -> dict[str, Any]:
    """`shop` feeds pipeline `customers`; webhook source `orders` (connection shop) runs it
    on any event but `ping`, which it ignores; `imports` imports one record through it;
    `crm_hook` calls a handler that crm's account acct_1 refuses."""
    return {
        "database": database,
        "jobs": {"retry_delay": 0.01, "retry_max_delay": 0.02, "poll_interval": 0.05},
        "connections": {
            "shop": {"base_url": shop_url, "auth": {"type": "bearer", "token": TOKEN}},
            "crm": {"base_url": "http://127.0.0.1:9"},
        },
        "resources": {
            "shop": {
                "customers": {
                    "path": "/customers",
                    "records": "data",
                    "paginate": {"type": "offset", "page_size": 50},
                }
            }
        },
        "pipelines": {"customers": {"source": "shop.customers", "destination": "sql:customers"}},
        "webhooks": {
            "orders": {
                "scheme": "github",
                "secret": SECRET,
                "connection": "shop",
                "actions": {"ping": "ignore", "*": {"run": "customers"}},
            },
            "imports": {
                "scheme": "github",
                "secret": SECRET,
                "actions": {"customer.imported": {"run": "customers", "record": "data.id"}},
            },
            "crm_hook": {
                "scheme": "github",
                "secret": SECRET,
                "max_attempts": 3,
                "actions": {"*": {"handler": "tests.webhooks.test_held:refused_by_crm"}},
            },
        },
    }


def make_config(database: str, shop_url: str) -> InterlinkConfig:
    return InterlinkConfig.model_validate(project(database, shop_url))


def customers_read(url: str) -> int:
    paths = httpx.get(f"{url}/_stats").json()["paths"]
    return sum(count for path, count in paths.items() if "customers" in path)


def work(queue: Queue) -> None:
    """Run the queue's jobs until none is left queued (bounded)."""
    deadline = time.monotonic() + 30
    while True:
        asyncio.run(queue.work(job_kinds(), concurrency=2, burst=True))
        if queue.counts()["queued"] == 0 or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def accept(store: Store, queue: Queue, source: str, n: int, event: str) -> list[int]:
    inbox = Inbox(store, queue)
    try:
        body = orjson.dumps({"data": {"id": 17}})

        async def each() -> list[int]:
            stored = [
                await inbox.accept(
                    Arrival(source, f"d-{i}", event, time.time(), body, {"x-github-event": event})
                )
                for i in range(n)
            ]
            return [s.id for s in stored]

        return asyncio.run(each())
    finally:
        inbox.close()


def statuses(store: Store) -> dict[int, tuple[str, int]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(deliveries.c.id, deliveries.c.status, deliveries.c.attempts))
        return {int(r.id): (r.status, int(r.attempts)) for r in rows}


def count_rows(store: Store, table: str) -> int | None:
    with store.engine.connect() as conn:
        if not sa.inspect(conn).has_table(table):
            return None
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_an_import_is_held_while_off_and_done_once_on(database: str, shop: SandboxServer) -> None:
    config = make_config(database, shop.url)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        switch_off(config, store, "shop", reason="maintenance", by="cli")
        read_before = customers_read(shop.url)
        [row_id] = accept(store, queue, "imports", 1, "customer.imported")
        work(queue)
        delivery = get_delivery(store.engine, row_id)
        assert delivery is not None and (delivery.status, delivery.attempts) == ("held", 0)
        assert delivery.last_error == (
            "held: connection 'shop' is switched off (maintenance); it is processed once "
            "switched on"
        )
        assert delivery.processed_at is None
        assert customers_read(shop.url) == read_before, "nothing went to the switched-off API"
        assert queue.counts()["queued"] == 0, "a held delivery has no job waiting"
        # A replay while still off holds it again; it is never dead-lettered for it.
        replay(store, queue, row_id, config=config)
        work(queue)
        assert statuses(store)[row_id] == ("held", 0)

        done, released = switch_on_releasing(config, store, queue, "shop")
        assert done.changed and released == [row_id]
        delivery = get_delivery(store.engine, row_id)
        assert delivery is not None and delivery.status == "pending" and delivery.job_id
        work(queue)
        assert statuses(store)[row_id] == ("processed", 1)
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id FROM customers")).scalars().all() == [17]
        # Nothing is held any more: switching on again releases nothing.
        assert switch_on_releasing(config, store, queue, "shop")[1] == []
    finally:
        queue.close()
        store.close()


def test_the_receiver_stores_while_off_and_the_api_switch_on_releases(
    database: str, shop: SandboxServer
) -> None:
    """Through the real app: deliveries to a source whose connection is off are answered
    202 and stored; the worker holds them; `POST /connections/shop/enable` queues them, and
    they run the pipeline."""
    config = make_config(database, shop.url)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    key = create_api_key(store.engine, "ops", "write").secret
    switch_off(config, store, "shop", reason="rotating keys", by="cli")

    async def deliver_then_enable() -> tuple[list[httpx.Response], dict[str, Any]]:
        application = create_app(config, store=store, queue=queue)
        transport = httpx.ASGITransport(app=application)
        async with (
            application.router.lifespan_context(application),
            httpx.AsyncClient(transport=transport, base_url="http://interlink.test") as client,
        ):
            answers = []
            for n, event in enumerate(["order.created"] * 4 + ["ping"]):
                body = orjson.dumps({"n": n})
                headers = sign(config.webhooks["orders"], body, timestamp=int(time.time()))
                headers |= {"X-GitHub-Delivery": f"o-{n}", "X-GitHub-Event": event}
                answers.append(
                    await client.post("/api/v1/webhooks/orders", content=body, headers=headers)
                )
            await asyncio.to_thread(work, queue)
            held = statuses(store)
            assert sorted(s for s, _ in held.values()) == ["held"] * 4 + ["ignored"], held
            assert count_rows(store, "customers") is None, "no run while off"
            on = await client.post(
                "/api/v1/connections/shop/enable", headers={"Authorization": f"Bearer {key}"}
            )
            return answers, on.json()

    try:
        answers, on = asyncio.run(deliver_then_enable())
        assert [a.status_code for a in answers] == [202] * 5, [a.text for a in answers]
        assert on["data"]["released"] == 4 and on["data"]["enabled"] is True
        work(queue)
        assert sorted(s for s, _ in statuses(store).values()) == ["ignored"] + ["processed"] * 4
        assert count_rows(store, "customers") == 120
        runs = queue.list(JobFilter(pipeline="customers"))
        assert runs and all(run.status == "completed" for run in runs)
    finally:
        queue.close()
        store.close()


def test_an_account_switch_met_by_the_action_holds_and_a_switch_on_meanwhile_retries(
    database: str, shop: SandboxServer
) -> None:
    """ConnectionDisabledError from the action (here a handler; a record import for an
    account as well) holds the delivery while that switch is off. When it is on again by
    the time the hold looks, the attempt is an ordinary failure, retried."""
    config = make_config(database, shop.url)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    CALLS.clear()
    try:
        with store.transaction() as conn:
            disable(conn, "crm", "acct_1", reason="customer left", by="cli")
        [row_id] = accept(store, queue, "crm_hook", 1, "contact.updated")
        work(queue)
        delivery = get_delivery(store.engine, row_id)
        assert delivery is not None and (delivery.status, delivery.attempts) == ("held", 0)
        assert "account 'acct_1' is switched off (customer left)" in (delivery.last_error or "")
        assert CALLS == ["d-0"]

        with store.transaction() as conn:
            enable(conn, "crm", "acct_1")
        # The handler still says "off" (a stale answer): not held, retried to the end.
        assert release_held(config, store, queue) == [row_id]
        work(queue)
        delivery = get_delivery(store.engine, row_id)
        assert delivery is not None and (delivery.status, delivery.attempts) == ("failed", 3)
        assert "on again when the delivery was to be held" in (delivery.last_error or "")
        assert len(CALLS) == 4
    finally:
        queue.close()
        store.close()


def test_release_goes_in_chunks_and_leaves_what_is_still_off(
    database: str, shop: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(held_module, "RELEASE_CHUNK", 3)
    config = make_config(database, shop.url)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        switch_off(config, store, "shop", by="cli")
        with store.transaction() as conn:
            disable(conn, "crm", "acct_1", by="cli")
        shop_ids = accept(store, queue, "orders", 7, "order.created")
        crm_ids = accept(store, queue, "crm_hook", 2, "contact.updated")
        for row_id in shop_ids + crm_ids:
            with store.transaction() as conn:
                conn.execute(
                    sa.update(deliveries).where(deliveries.c.id == row_id).values(attempts=1)
                )
            if row_id in shop_ids:
                assert hold(store, row_id, [("shop", "")]) is not None
            else:  # held by the switch its handler ran into
                assert hold(store, row_id, [], ran_into=("crm", "acct_1")) is not None
        done, released = switch_on_releasing(config, store, queue, "shop")
        assert released == sorted(shop_ids)
        now = statuses(store)
        assert all(now[i] == ("pending", 0) for i in shop_ids)
        assert all(now[i] == ("held", 0) for i in crm_ids)
        with store.engine.connect() as conn:
            jobs = {
                row.job_id
                for row in conn.execute(
                    sa.select(deliveries.c.job_id).where(deliveries.c.id.in_(shop_ids))
                )
            }
        assert len(jobs) == 3, "one job per chunk of a source: 3 + 3 + 1"
    finally:
        queue.close()
        store.close()


def test_a_switch_on_during_a_hold_never_strands_the_delivery(
    database: str, shop: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race a hold must not lose: the hold has read "off", and right then the switch
    goes on and the release runs. Switching on waits for the hold's transaction (SQLite's
    write lock, taken by the hold's first write; FOR SHARE on PostgreSQL), so the release
    after it finds the delivery held and queues it. Without the lock the release ran
    first, found nothing held, and the delivery stayed held for good."""
    config = make_config(database, shop.url)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        switch_off(config, store, "shop", by="cli")
        [row_id] = accept(store, queue, "orders", 1, "order.created")
        read_off = threading.Event()
        released: list[list[int]] = []
        real = held_module.disabled

        def slow_disabled(*args: Any, **kwargs: Any) -> Any:
            found = real(*args, **kwargs)
            read_off.set()
            time.sleep(0.5)  # the switch-on and the release try to go now
            return found

        def switch_on_and_release() -> None:
            read_off.wait(10)
            released.append(switch_on_releasing(config, store, queue, "shop")[1])

        monkeypatch.setattr(held_module, "disabled", slow_disabled)
        other = threading.Thread(target=switch_on_and_release)
        other.start()
        assert hold(store, row_id, [("shop", "")]) is not None
        other.join(30)
        assert released == [[row_id]], "the release came after the hold, and queued it"
        assert statuses(store)[row_id] == ("pending", 0)
    finally:
        queue.close()
        store.close()


def test_a_hold_looks_at_every_switch_the_delivery_needs(database: str) -> None:
    """A delivery needing crm and shop, both off, crm switched on between the worker's
    look and the hold: shop still holds it (a hold that looked at crm alone went on, and
    the run it queued failed for good on shop)."""
    config = make_config(database, "http://127.0.0.1:9")
    store = Store.open(database)
    queue = open_queue(config, store)
    try:
        [row_id] = accept(store, queue, "imports", 1, "customer.imported")
        with store.transaction() as conn:
            disable(conn, "crm", by="cli")
            disable(conn, "shop", reason="moving", by="cli")
            enable(conn, "crm")
        assert hold(store, row_id + 1, [("shop", "")]) is None, "no such delivery to hold"
        switch = hold(store, row_id, [("crm", ""), ("shop", "")])
        assert switch is not None and (switch.connection, switch.reason) == ("shop", "moving")
        with store.transaction() as conn:
            disable(conn, "shop", "acct_9", by="cli")
            enable(conn, "shop")
        switch = hold(store, row_id, [("shop", "acct_9")])
        assert switch is not None and switch.account == "acct_9", "the account's own switch"
        assert hold(store, row_id, [("shop", "acct_1")]) is None
    finally:
        queue.close()
        store.close()


def test_a_switch_off_during_a_batch_holds_the_rest_of_it(
    database: str, shop: SandboxServer
) -> None:
    """The switches are read for each delivery of a batch: the first handler's call
    switches crm off, and the three after it in the same job are held."""
    raw = project(database, shop.url)
    raw["connections"]["crm"]["base_url"] = "http://127.0.0.1:9"
    raw["webhooks"]["crm_batch"] = {
        "scheme": "github",
        "secret": SECRET,
        "connection": "crm",
        "actions": {"*": {"handler": "tests.webhooks.test_held:switches_crm_off"}},
    }
    config = InterlinkConfig.model_validate(raw)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    SWITCHING.clear()
    SWITCHING.append(store)
    CALLS.clear()
    try:
        ids = accept(store, queue, "crm_batch", 4, "contact.updated")
        # One job for the four, as one commit of the inbox makes (the jobs each commit
        # made find their deliveries handled by this one, and skip them).
        with store.transaction() as conn:
            job = queue.enqueue(batch_job(ids, "crm_batch"), conn=conn)
            for row_id in ids:
                requeue_delivery(conn, row_id, job.id)
        work(queue)
        now = statuses(store)
        assert [now[i][0] for i in ids] == ["processed", "held", "held", "held"]
        assert len(CALLS) == 1
    finally:
        SWITCHING.clear()
        queue.close()
        store.close()


def test_a_config_change_never_strands_a_held_delivery(database: str, shop: SandboxServer) -> None:
    """What held a delivery may leave interlink.yaml: the source's `connection:` (held by
    the worker's look), or the connection its action ran into (which can then never be
    switched on). Both are released once nothing in the config holds them."""
    config = make_config(database, shop.url)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        switch_off(config, store, "shop", by="cli")
        with store.transaction() as conn:
            disable(conn, "crm", "acct_1", by="cli")
        [order] = accept(store, queue, "orders", 1, "order.created")
        [contact] = accept(store, queue, "crm_hook", 1, "contact.updated")
        work(queue)
        assert {order: ("held", 0), contact: ("held", 0)} == statuses(store)
        assert release_held(config, store, queue) == []
        raw = project(database, shop.url)
        del raw["webhooks"]["orders"]["connection"]
        raw["webhooks"]["orders"]["actions"] = {"*": {"handler": "tests.webhooks.test_held:noop"}}
        del raw["connections"]["crm"]
        changed = InterlinkConfig.model_validate(raw)
        assert release_held(changed, store, queue) == [order, contact]
    finally:
        queue.close()
        store.close()


def test_a_worker_releases_what_was_switched_on_another_way(
    database: str, shop: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A switch removed without `switch_on_releasing` (an account disconnected and
    connected again deletes its switch; a release that failed): the worker's chore
    queues the held delivery within CHORE_EVERY, and the worker processes it."""
    import interlink.jobs._worker as worker_module
    from interlink.jobs import run_worker
    from interlink.webhooks import release_chore

    monkeypatch.setattr(worker_module, "CHORE_EVERY", 0.05)
    config = make_config(database, shop.url)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        switch_off(config, store, "shop", by="cli")
        [row_id] = accept(store, queue, "imports", 1, "customer.imported")
        work(queue)
        assert statuses(store)[row_id] == ("held", 0)
        with store.transaction() as conn:
            enable(conn, "shop")  # not through switch_on_releasing

        async def until_processed() -> None:
            stop = asyncio.Event()
            chore = release_chore(config, store, queue)
            task = asyncio.create_task(
                run_worker(config, store, queue, kinds=job_kinds(), stop=stop, chores=[chore])
            )
            deadline = time.monotonic() + 20
            while statuses(store)[row_id][0] != "processed" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            stop.set()
            await task

        asyncio.run(until_processed())
        assert statuses(store)[row_id] == ("processed", 1)
    finally:
        queue.close()
        store.close()


def test_switching_on_from_the_cli_says_how_many_were_released(
    tmp_path: Path, shop: SandboxServer
) -> None:
    path = tmp_path / "interlink.yaml"
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    path.write_text(yaml.safe_dump(project(database, shop.url)))
    config = make_config(database, shop.url)
    store = Store.open(database)
    queue = open_queue(config, store)
    try:
        switch_off(config, store, "shop", by="cli")
        accept(store, queue, "orders", 2, "order.created")
        work(queue)
    finally:
        queue.close()
        store.close()
    result = CliRunner().invoke(cli_app, ["connections", "enable", "shop", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "Switched connection 'shop' on." in result.stdout
    assert "2 held webhook deliveries are queued" in result.stdout
