"""Hostile tests of pushing into an API: nothing doubled, nothing bound twice, nothing lost.

The sandbox suite of test_api_sink (its commerce API honours Idempotency-Key and refuses
a key reused with another body, as Stripe does).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlink.config import InterlinkConfig, RestResourceConfig
from interlink.connectors import Catalog
from interlink.errors import PipelineLockedError, SyncError
from interlink.sandbox import SandboxServer, create_sandbox_app
from interlink.store import Binding, Store, drop_pending, load_bindings, save_bindings, save_pending
from interlink.store._schema import bindings as bindings_table
from interlink.sync import ApiSink, RunResult, compile_mapping, newer, run_pipeline

from .test_api_sink import FIELDS, TOKEN, Commerce, config_for, run, shop_patch


@pytest.fixture
def fresh_suite() -> Iterator[str]:
    app = create_sandbox_app(records=120, token=TOKEN, commerce_records=20)
    with SandboxServer(app) as server:
        yield server.url


@pytest.fixture
def overlap_suite() -> Iterator[str]:
    app = create_sandbox_app(records=60, token=TOKEN, commerce_records=20, commerce_overlap=5)
    with SandboxServer(app) as server:
        yield server.url


def shop_get(url: str, id: int) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(
        f"{url}/shop/customers/{id}", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    return body


def sink_for(config: InterlinkConfig, store: Store, catalog: Catalog) -> ApiSink:
    return ApiSink(
        store,
        "to_commerce",
        config.pipelines["to_commerce"],
        catalog.writable("commerce.customers"),
        source_key="id",
        fields=list(FIELDS),
    )


def all_bindings(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(bindings_table)))


def test_same_source_key_twice_in_one_batch_creates_one_target(fresh_suite, tmp_path):
    """A page that holds one source record twice (an offset page shifted by an insert)
    must not create it twice at concurrency > 1."""
    database = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(database)
    config = config_for(fresh_suite, database, match=[], conflict="source_wins")
    commerce = Commerce(fresh_suite)

    async def go() -> Any:
        async with Catalog(config) as catalog:
            records = [r async for r in catalog.resource("shop.customers").records(limit=3)]
            later = dict(records[0], company="Changed Ltd", updated_at="2099-01-01T00:00:00Z")
            mapping = compile_mapping(FIELDS, where="test")
            items = [(r, mapping(r)) for r in [*records, later]]
            return await sink_for(config, store, catalog).write(items)

    outcome = asyncio.run(go())
    assert not outcome.failures, outcome.failures
    assert commerce.stats()["creates"] == 3, "one source record became two target records"
    assert len({b.source_key for b in outcome.bindings}) == len(outcome.bindings)
    assert outcome.created == 3 and outcome.unchanged == 1
    first = next(b for b in outcome.bindings if b.source_key == "1")
    target = next(r for r in commerce.all() if r["id"] == first.target_key)
    assert target["attributes"]["company"] == "Changed Ltd", "the later copy's values won"
    store.close()


def test_save_bindings_takes_the_last_of_one_key(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with store.transaction() as conn:
        save_bindings(conn, "p", [Binding("1", "a", "v1", "t1"), Binding("1", "b", "v2", "t2")])
    assert load_bindings(store.engine, "p", ["1"])["1"] == Binding("1", "b", "v2", "t2")
    store.close()


def test_source_changed_after_an_unbound_create_creates_nothing_twice(fresh_suite, tmp_path):
    """A crash after the creates were acknowledged and before their bindings committed;
    then the source changes one of the records before the next run. The next run must
    neither create that record a second time nor leave the target with its old values."""
    suite = fresh_suite
    database = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(database)
    config = config_for(suite, database, match=[], conflict="source_wins")
    commerce = Commerce(suite)

    async def write_without_commit() -> None:
        async with Catalog(config) as catalog:
            records = [r async for r in catalog.resource("shop.customers").records(limit=10)]
            mapping = compile_mapping(FIELDS, where="test")
            outcome = await sink_for(config, store, catalog).write(
                [(r, mapping(r)) for r in records]
            )
            assert outcome.created == 10 and not outcome.failures
            # ... and the process dies here: no bindings, no checkpoint committed.

    asyncio.run(write_without_commit())
    assert commerce.stats()["creates"] == 10
    shop_patch(suite, 3, company="Changed After The Crash")
    result = run(config, store)
    assert result.ok, result.errors
    assert len(commerce.all()) == 20 + 120, "customer 3 was created twice"
    email = shop_get(suite, 3)["email"]
    (three,) = [r for r in commerce.all() if r["attributes"]["email"] == email]
    assert three["attributes"]["company"] == "Changed After The Crash"
    # Settled: the run after changes nothing.
    again = run(config, store)
    assert again.ok and again.counts["created"] == 0 and again.counts["updated"] == 0
    store.close()


def test_two_source_records_never_bind_one_target(overlap_suite, tmp_path):
    """Two shop customers with one email both `match:` the same commerce customer: only one
    may be bound to it; the other is a failed record that says why, and the run says so."""
    suite = overlap_suite
    database = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(database)
    config = config_for(suite, database, conflict="source_wins")
    shop_patch(suite, 40, email=shop_get(suite, 2)["email"])
    result = run(config, store)
    targets = [row.target_key for row in all_bindings(store)]
    assert len(targets) == len(set(targets)), "two source records bound to one target record"
    assert not result.ok
    (error,) = [e for e in result.errors if "already bound" in str(e)]
    assert "40" in str(error) or "2" in str(error)
    store.close()


def test_newer_compares_datetimes_and_texts_as_instants():
    # A SQL source hands datetimes (naive: UTC), a JSON target ISO texts.
    assert newer(dt.datetime(2026, 1, 1, 10, 0), "2026-01-01T09:00:00Z") is True
    assert newer(dt.datetime(2026, 1, 1, 8, 0), "2026-01-01T09:00:00Z") is False
    eastern = dt.timezone(dt.timedelta(hours=-5))
    assert newer(dt.datetime(2026, 1, 1, 5, 0, tzinfo=eastern), "2026-01-01T09:00:00Z") is True
    assert newer("2026-01-01T09:00:00Z", dt.datetime(2026, 1, 1, 9, 0)) is True  # equal
    assert newer(dt.date(2026, 1, 2), "2026-01-01T23:00:00Z") is True


class LosesAnswers:
    """Lets commerce create the first `lose` customers POSTed, then answers each of those
    creates with a 502 as a proxy that lost the upstream's answer would; with
    `ignore_keys`, strips Idempotency-Key first (an API that does not honour keys)."""

    def __init__(self, app: ASGIApp, *, lose: int, ignore_keys: bool = False) -> None:
        self.app = app
        self.lose = lose
        self.ignore_keys = ignore_keys
        self.lost: list[str] = []
        self.taken = 0
        """Creates claimed for losing, counted as they arrive: concurrent creates must not
        all pass the check before the first one is counted."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        creating = (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/commerce/api/customers"
        )
        if not creating:
            await self.app(scope, receive, send)
            return
        if self.ignore_keys:
            scope = dict(scope)
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"idempotency-key"]
        if self.taken >= self.lose:
            await self.app(scope, receive, send)
            return
        self.taken += 1
        answer: dict[str, Any] = {}
        body = b""

        async def swallow(message: Message) -> None:
            nonlocal body
            if message["type"] == "http.response.start":
                answer.update(message)
            else:
                body += message.get("body", b"")

        await self.app(scope, receive, swallow)
        if answer.get("status") == 201:
            self.lost.append(orjson.loads(body)["data"]["attributes"]["email"])
        await send({"type": "http.response.start", "status": 502, "headers": []})
        await send({"type": "http.response.body", "body": b"upstream answer lost"})


def lossy_suite(**kwargs: Any) -> tuple[SandboxServer, LosesAnswers]:
    app = create_sandbox_app(records=120, token=TOKEN, commerce_records=20)
    lossy = LosesAnswers(app, **kwargs)
    return SandboxServer(lossy), lossy


def without_retry_header(config: InterlinkConfig) -> InterlinkConfig:
    """The commerce connection without `retry.idempotency_header`: a POST is never sent
    twice by the retry layer, so a lost answer is a failed record."""
    commerce = config.connections["commerce"]
    retry = commerce.retry.model_copy(update={"idempotency_header": None})
    config.connections["commerce"] = commerce.model_copy(update={"retry": retry})
    return config


def test_lost_create_answer_then_source_change_creates_once(tmp_path):
    """The API (honouring keys) created the customer but its answer was lost (a 502 not
    retried); the run says it is not sure; the source then changes; the next run binds
    the one customer and writes the change."""
    server, lossy = lossy_suite(lose=1)
    with server:
        database = f"sqlite:///{tmp_path / 'state.db'}"
        store = Store.open(database)
        config = without_retry_header(
            config_for(server.url, database, match=[], conflict="source_wins")
        )
        first = run(config, store)
        assert lossy.lost, "the fault did not fire"
        assert not first.ok and len(first.errors) == 1, first.errors
        shop_id = next(
            i for i in range(1, 121) if shop_get(server.url, i)["email"] == lossy.lost[0]
        )
        shop_patch(server.url, shop_id, company="Changed Meanwhile")
        second = run(config, store)
        assert second.ok, second.errors
        commerce = Commerce(server.url)
        records = commerce.all()
        assert len(records) == 20 + 120, "the customer whose answer was lost was created twice"
        (one,) = [r for r in records if r["attributes"]["email"] == lossy.lost[0]]
        assert one["attributes"]["company"] == "Changed Meanwhile"
        store.close()


def test_lost_create_answer_without_key_support_is_rescued_by_match(tmp_path):
    """An API that ignores idempotency keys: the replayed create would double the record;
    `match: email` finds the first one instead."""
    server, lossy = lossy_suite(lose=3, ignore_keys=True)
    with server:
        database = f"sqlite:///{tmp_path / 'state.db'}"
        store = Store.open(database)
        config = without_retry_header(config_for(server.url, database, conflict="source_wins"))
        first = run(config, store)
        assert len(lossy.lost) == 3 and not first.ok
        # The failed records did not change: only a full read sees them again.
        second = run(config, store, full_refresh=True)
        assert second.ok, second.errors
        records = Commerce(server.url).all()
        assert len(records) == 20 + 120
        targets = [row.target_key for row in all_bindings(store)]
        assert len(targets) == len(set(targets)) == 120
        store.close()


def test_refused_create_leaves_no_pending_binding(fresh_suite, tmp_path):
    """A create the API refuses (422: a taken email) created nothing: no pending binding
    stays behind to be replayed with the refused body."""
    suite = fresh_suite
    database = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(database)
    config = config_for(suite, database, match=[], conflict="source_wins")
    shop_patch(suite, 9, email=shop_get(suite, 8)["email"])
    first = run(config, store)
    assert not first.ok and len(first.errors) == 1
    (refused,) = [e["key"] for e in first.errors]
    assert refused in ("8", "9") and "422" in first.errors[0]["error"]
    assert refused not in load_bindings(store.engine, "to_commerce", ["8", "9"])
    shop_patch(suite, int(refused), email="renamed@example.org")
    second = run(config, store)
    assert second.ok, second.errors
    assert len(Commerce(suite).all()) == 20 + 120
    store.close()


def test_bindings_on_postgresql_take_one_row_per_key_and_forget_refused_creates(postgres_url):
    store = Store.open(postgres_url)
    pipeline = f"push_{uuid.uuid4().hex[:12]}"
    try:
        save_pending(store.engine, pipeline, [("1", "v0", {"a": 1}), ("2", "v0", {"b": 2})])
        with store.transaction() as conn:
            save_bindings(
                conn, pipeline, [Binding("1", "a", "v1", "t1"), Binding("1", "b", "v2", "t2")]
            )
            drop_pending(conn, pipeline, ["1", "2"])
        assert load_bindings(store.engine, pipeline, ["1", "2"]) == {
            "1": Binding("1", "b", "v2", "t2")
        }
    finally:
        with store.transaction() as conn:
            conn.execute(sa.delete(bindings_table).where(bindings_table.c.pipeline == pipeline))
        store.close()


def test_two_runs_of_one_api_pipeline_on_postgresql_never_overlap(fresh_suite, postgres_url):
    """Two workers run the same API pipeline on one PostgreSQL store at once: the pipeline's
    lock refuses one of them, and every customer is created once."""
    store = Store.open(postgres_url)
    config = config_for(fresh_suite, postgres_url, match=[], conflict="source_wins")
    name = f"push_{uuid.uuid4().hex[:12]}"
    config.pipelines[name] = config.pipelines.pop("to_commerce")

    async def one() -> RunResult:
        async with Catalog(config) as catalog:
            return await run_pipeline(config, name, store=store, catalog=catalog)

    async def both() -> list[RunResult | BaseException]:
        return await asyncio.gather(one(), one(), return_exceptions=True)

    try:
        outcomes = asyncio.run(both())
        refused = [o for o in outcomes if isinstance(o, PipelineLockedError)]
        done = [o for o in outcomes if isinstance(o, RunResult)]
        assert len(refused) == 1 and len(done) == 1, outcomes
        assert done[0].ok and done[0].counts["created"] == 120
        assert len(Commerce(fresh_suite).all()) == 20 + 120
    finally:
        with store.transaction() as conn:
            conn.execute(sa.delete(bindings_table).where(bindings_table.c.pipeline == name))
        store.close()


def test_an_update_of_a_target_deleted_at_the_target_fails_and_says_so(fresh_suite, tmp_path):
    """interlink does not re-create a record someone deleted at the target: the record
    fails, naming the target record, the source record and what to do."""
    suite = fresh_suite
    database = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(database)
    config = config_for(suite, database, match=[], conflict="source_wins")
    assert run(config, store).ok
    commerce = Commerce(suite)
    target = load_bindings(store.engine, "to_commerce", ["4"])["4"].target_key
    httpx.delete(
        f"{commerce.url}/api/customers/{target}", headers=commerce.headers
    ).raise_for_status()
    shop_patch(suite, 4, company="After The Delete")
    result = run(config, store)
    assert not result.ok
    (error,) = result.errors
    assert error["key"] == "4"
    assert f"record {target!r}" in error["error"] and "deleted at the target" in error["error"]
    assert len(commerce.all()) == 20 + 119
    store.close()


class HidesOne:
    """Leaves commerce customer `hidden` out of its listings, with the total unchanged (a
    page that shifted while it was read)."""

    def __init__(self, app: ASGIApp, hidden: str) -> None:
        self.app = app
        self.hidden = hidden
        self.listings = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and scope["path"] == "/commerce/api/customers"):
            await self.app(scope, receive, send)
            return
        if scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        self.listings += 1
        start: dict[str, Any] = {}
        body = b""

        async def keep(message: Message) -> None:
            nonlocal body
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body += message.get("body", b"")

        await self.app(scope, receive, keep)
        document = orjson.loads(body)
        document["data"] = [r for r in document["data"] if r["id"] != self.hidden]
        content = orjson.dumps(document)
        headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": content})


@pytest.mark.parametrize("on_total_mismatch", ["fail", "warn"])
def test_a_short_read_of_the_target_for_match_creates_nothing(tmp_path, on_total_mismatch):
    """The target's listing misses a customer that `match:` would find: whatever the
    resource's on_total_mismatch, the run writes nothing it is unsure of, fails saying why,
    and reads the target once, not once per record."""
    app = HidesOne(
        create_sandbox_app(records=30, token=TOKEN, commerce_records=20, commerce_overlap=5),
        hidden="1",
    )
    with SandboxServer(app) as server:
        database = f"sqlite:///{tmp_path / 'state.db'}"
        store = Store.open(database)
        config = config_for(server.url, database, conflict="source_wins")
        customers = config.resources["commerce"]["customers"]
        assert isinstance(customers, RestResourceConfig)
        config.resources["commerce"]["customers"] = customers.model_copy(
            update={
                "paginate": customers.paginate.model_copy(update={"total_path": "meta.total"}),
                "on_total_mismatch": on_total_mismatch,
            }
        )
        with pytest.raises(SyncError, match="needs every record of commerce.customers"):
            run(config, store)
        assert app.listings == 1
        assert Commerce(server.url).stats()["creates"] == 0
        store.close()


class Throttles:
    """Answers each customer create 429 (Retry-After: 0) `times` times before letting it
    through, counted per request body."""

    def __init__(self, app: ASGIApp, times: int) -> None:
        self.app = app
        self.times = times
        self.refused: dict[bytes, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/commerce/api/customers"
        ):
            await self.app(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"")
        if self.refused.get(body, 0) < self.times:
            self.refused[body] = self.refused.get(body, 0) + 1
            await send(
                {"type": "http.response.start", "status": 429, "headers": [(b"retry-after", b"0")]}
            )
            await send({"type": "http.response.body", "body": b"slow down"})
            return

        async def replay() -> Message:
            return message

        await self.app(scope, replay, send)


@pytest.mark.parametrize("times", [2, 10])
def test_a_429_storm_doubles_nothing_and_drops_nothing(tmp_path, times):
    """Two 429s per create: the retries get every customer through, once. Ten: more than
    the connection's attempts, so every create fails, is reported, and leaves no pending
    binding; a run once the storm is over creates each customer once."""
    app = Throttles(create_sandbox_app(records=10, token=TOKEN, commerce_records=20), times)
    with SandboxServer(app) as server:
        database = f"sqlite:///{tmp_path / 'state.db'}"
        store = Store.open(database)
        config = config_for(server.url, database, match=[], conflict="source_wins")
        first = run(config, store)
        assert app.refused and len(app.refused) == 10, "the fault did not fire"
        commerce = Commerce(server.url)
        if times == 2:
            assert first.ok and first.counts["created"] == 10
        else:
            assert not first.ok and first.counts["failed"] == 10
            assert all("429" in e["error"] for e in first.errors)
            assert not all_bindings(store)
            assert commerce.stats()["creates"] == 0
            app.times = 0
            second = run(config, store, full_refresh=True)
            assert second.ok and second.counts["created"] == 10, second.errors
        assert commerce.stats()["creates"] == 10
        assert len(commerce.all()) == 20 + 10
        store.close()


def test_the_idempotency_key_tells_apart_two_bodies_of_one_timestamp_version():
    """A timestamp version with whole seconds can stay the same across an edit (the full
    suite hit it: a create refused, the record fixed within the same second, and the API
    refused the new create as "Idempotency-Key used with a different request body"). A
    pending create sent again keeps its key: the stored body is the one sent."""
    from types import SimpleNamespace

    from interlink.sync._api_sink import ApiSink

    sink: Any = SimpleNamespace(name="to_commerce")
    version = "2026-12-05T19:30:15Z"
    first = {"email": "taken@example.org", "name": "Ana", "born": dt.date(1990, 1, 2)}
    fixed = {**first, "email": "renamed@example.org"}
    key = ApiSink._idempotency_key(sink, "9", version, first)
    assert ApiSink._idempotency_key(sink, "9", version, fixed) != key
    stored = orjson.loads(orjson.dumps(first, default=str))  # as a pending binding keeps it
    assert ApiSink._idempotency_key(sink, "9", version, stored) == key
