"""Hostile review of incremental reads, checkpoints, replace and deletions (session 8, R7).

Each test is a way a run could say it succeeded while the destination differs from the
source: rows doubled, a change skipped, a row deleted that the source still has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import IncompleteReadError, StateMismatchError
from interlink.sandbox import SandboxServer
from interlink.store import Store
from interlink.sync import RunResult, run_pipeline

from .fake_source import FakeSource, config

COUNT = 500


@pytest.fixture
def source() -> Iterator[tuple[FakeSource, str]]:
    fake = FakeSource(COUNT)
    with SandboxServer(fake.app()) as server:
        yield fake, server.url


@pytest.fixture
def database(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'interlink.db'}"


def build(url: str, database: str, pipeline: dict[str, Any], **kwargs: Any) -> InterlinkConfig:
    return InterlinkConfig.model_validate(config(url, database, {"p": pipeline}, **kwargs))


def run(cfg: InterlinkConfig, store: Store, **kwargs: Any) -> RunResult:
    async def go() -> RunResult:
        async with Catalog(cfg) as catalog:
            return await run_pipeline(cfg, "p", store=store, catalog=catalog, **kwargs)

    return asyncio.run(go())


def rows(store: Store, table: str, columns: str = "id") -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [
            tuple(r) for r in conn.exec_driver_sql(f"SELECT {columns} FROM {table} ORDER BY id")
        ]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'interlink.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    store = Store.open(url)
    with store.engine.begin() as conn:
        for table in ("r7_items", "interlink_stage_r7_items", "interlink_seen_r7_items"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        for table in ("interlink_state", "interlink_locks"):
            conn.exec_driver_sql(f"DELETE FROM {table} WHERE pipeline = 'p'")
    store.close()
    yield url


def test_an_incremental_append_run_appends_only_what_changed(source, any_database):
    """Before: every incremental run appended the record at the cursor again (the read
    starts at the cursor, `>=`): 501 rows after a run that found no change."""
    fake, url = source
    append = {"source": "src.items", "destination": "sql:r7_items", "write": "append"}
    cfg = build(url, any_database, append)
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    assert len(rows(store, "r7_items")) == COUNT
    again = run(cfg, store)
    assert again.ok and again.counts["read"] == 1, "the record at the cursor, read again"
    assert len(rows(store, "r7_items")) == COUNT, again.counts
    assert again.counts["unchanged"] == 1 and again.counts["created"] == 0
    # Within the cursor's own instant: record 500 changes, record 501 appears. Both are
    # new versions, and both are appended.
    top = fake.records[COUNT]["updated_at"]
    fake.records[COUNT] = {**fake.records[COUNT], "name": "renamed"}
    fake.records[COUNT + 1] = {"id": COUNT + 1, "name": "new", "score": 1, "updated_at": top}
    tie = run(cfg, store)
    assert tie.ok and tie.counts["created"] == 2, tie.counts
    assert run(cfg, store).counts["created"] == 0
    # A change only inside a JSON value, within the same instant, is a new version too.
    fake.records[COUNT] = {**fake.records[COUNT], "tags": ["a", {"b": 1.5}]}
    assert run(cfg, store).counts["created"] == 1
    assert run(cfg, store).counts["created"] == 0
    fake.records[COUNT] = {**fake.records[COUNT], "tags": ["a", {"b": 2}]}
    assert run(cfg, store).counts["created"] == 1
    assert run(cfg, store).counts["created"] == 0
    # A field dropped within the same instant: a new version (its row has score null).
    fake.records[COUNT] = {k: v for k, v in fake.records[COUNT].items() if k != "score"}
    assert run(cfg, store).counts["created"] == 1
    assert run(cfg, store).counts["created"] == 0
    fake.touch(7)
    assert run(cfg, store).counts["created"] == 1
    got = rows(store, "r7_items", "id, name")
    assert len(got) == COUNT + 6 and (COUNT, "renamed") in got and (COUNT + 1, "new") in got
    store.close()


def test_records_updated_during_an_incremental_read_are_not_skipped(source, database):
    fake, url = source
    cfg = build(url, database, {"source": "src.items", "destination": "sql:items"})
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    # 250 records changed since: the next read has 3 pages.
    fake.touch(*range(101, 351))
    calls = {"n": 0}
    original = fake.listing

    def listing(since, include_deleted):
        calls["n"] += 1
        if calls["n"] == 2:  # after the first page: an early record and a late one change
            fake.touch(5, 400)
        return original(since, include_deleted)

    fake.listing = listing  # type: ignore[method-assign]
    # Record 5 joined the read behind its offset, pushing one record onto the next page
    # (the page asked back drops it): the read is refused as incomplete (fewer distinct
    # keys than the total), and moves no cursor.
    with pytest.raises(IncompleteReadError, match="distinct `id`s"):
        run(cfg, store)
    fake.listing = original  # type: ignore[method-assign]
    third = run(cfg, store)
    assert third.ok
    got = {r[0]: r[1] for r in rows(store, "items", "id, updated_at")}
    want = {n: r["updated_at"] for n, r in fake.records.items()}
    assert got == want, {n: (got.get(n), want[n]) for n in want if got.get(n) != want[n]}
    store.close()


def test_a_filter_removed_later_is_refused_then_read_whole(source, database):
    """Before: the run without the filter read only what changed since the cursor, so the
    71 records the filter had left out (older than the cursor) never arrived: 429 of 500
    rows, and the run succeeded."""
    fake, url = source
    filtered = {"source": "src.items", "destination": "sql:items", "filter": "score != 3"}
    store = Store.open(database)
    assert run(build(url, database, filtered), store).ok
    assert len(rows(store, "items")) < COUNT
    unfiltered = {"source": "src.items", "destination": "sql:items"}
    with pytest.raises(StateMismatchError, match=r"pipelines\.p\.filter changed"):
        run(build(url, database, unfiltered), store)
    healed = run(build(url, database, {**unfiltered, "on_source_change": "full_refresh"}), store)
    assert healed.ok and any("filter" in w for w in healed.warnings)
    assert len(rows(store, "items")) == COUNT
    # A filter added (or a state stored before filters counted) skips nothing: kept.
    assert run(build(url, database, filtered), store).ok
    store.close()


def test_another_filter_is_refused_but_state_stored_before_filters_counted_is_kept(
    source, database
):
    fake, url = source
    store = Store.open(database)
    first = {"source": "src.items", "destination": "sql:items", "filter": "score != 3"}
    assert run(build(url, database, first), store).ok
    loosened = {**first, "filter": "score != 4"}
    with pytest.raises(StateMismatchError, match="filter changed"):
        run(build(url, database, loosened), store)
    # An older interlink stored the source's fingerprint alone: the same filter goes on.
    with store.transaction() as conn:
        conn.exec_driver_sql(
            "UPDATE interlink_state SET fingerprint = substr(fingerprint, 1, "
            "instr(fingerprint, '+') - 1)"
        )
    fake.touch(10)
    again = run(build(url, database, first), store)
    assert again.ok and again.counts["read"] == 2, "record 10 and the one at the cursor"
    store.close()


def test_a_changed_fields_mapping_is_refused_then_read_whole(source, database):
    """Before: after `fields:` gained a field, an incremental run read only what changed
    since the cursor: the 500 rows synced before had the new column empty while the
    source had a value for every one, and the run succeeded."""
    fake, url = source
    first = {"source": "src.items", "destination": "sql:items", "fields": {"id": "id"}}
    store = Store.open(database)
    assert run(build(url, database, first), store).ok
    widened = {**first, "fields": {"id": "id", "score": "score"}}
    with pytest.raises(StateMismatchError, match=r"pipelines\.p\.fields changed"):
        run(build(url, database, widened), store)
    healed = run(build(url, database, {**widened, "on_source_change": "full_refresh"}), store)
    assert healed.ok and any("fields" in w for w in healed.warnings)
    assert [r[0] for r in rows(store, "items", "score")] == [n % 7 for n in range(1, COUNT + 1)]
    # The same mapping written in another order is the same mapping.
    reordered = {**first, "fields": {"score": "score", "id": "id"}}
    fake.touch(3)
    assert run(build(url, database, reordered), store).ok
    store.close()


def test_a_fields_change_is_kept_where_every_run_reads_whole_or_state_predates_it(source, database):
    fake, url = source
    store = Store.open(database)
    replace = {"source": "src.items", "destination": "sql:items", "write": "replace"}
    assert run(build(url, database, {**replace, "fields": {"id": "id"}}), store).ok
    changed = run(build(url, database, {**replace, "fields": {"id": "id", "name": "name"}}), store)
    assert changed.ok and len(rows(store, "items")) == COUNT  # a whole read: nothing stale
    store.close()
    other = database.replace("interlink.db", "other.db")
    merge = {"source": "src.items", "destination": "sql:items", "fields": {"id": "id"}}
    store2 = Store.open(other)
    assert run(build(url, other, merge), store2).ok
    # State stored by an interlink before the mapping counted (no fields part): kept.
    with store2.transaction() as conn:
        conn.exec_driver_sql(
            "UPDATE interlink_state SET fingerprint = substr(fingerprint, 1, "
            "instr(fingerprint, '+fields:') - 1) WHERE pipeline = 'p'"
        )
    fake.touch(5)
    assert run(build(url, other, {**merge, "fields": {"id": "id", "name": "name"}}), store2).ok
    store2.close()
