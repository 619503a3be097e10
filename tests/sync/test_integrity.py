"""What a run writes is what the source has, or the run says why not (issue 10, section 1).

Each test reproduces a way main lost or doubled rows while reporting success: replace on
an incremental source, trials that truncated, deletions never applied, a full refresh
retried on top of itself, state kept across a changed source.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import (
    ConfigError,
    IncompleteReadError,
    JobCancelledError,
    StateMismatchError,
    SyncError,
)
from interlink.sandbox import SandboxServer
from interlink.store import Store, list_outstanding
from interlink.sync import RunResult, run_pipeline

from .fake_source import FakeSource, config

COUNT = 1000


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


def stop_after(pages: int):
    seen = {"n": 0}

    def should_stop() -> bool:
        seen["n"] += 1
        return seen["n"] >= pages

    return should_stop


def ids(store: Store, table: str, where: str = "") -> list[int]:
    with store.engine.connect() as conn:
        return [r[0] for r in conn.exec_driver_sql(f"SELECT id FROM {table} {where} ORDER BY id")]


def tables(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


# -- replace ---------------------------------------------------------------------------------


def test_replace_on_an_incremental_source_reads_the_whole_source(source, database):
    """main: the second run read only what changed since the cursor (1 record) into the
    truncated table, leaving 1 row of 1,000."""
    fake, url = source
    cfg = build(
        url, database, {"source": "src.items", "destination": "sql:items", "write": "replace"}
    )
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    again = run(cfg, store)
    assert again.ok and again.counts["read"] == COUNT
    assert ids(store, "items") == list(range(1, COUNT + 1))
    store.close()


def test_replace_loads_a_staging_table_swapped_in_only_when_the_read_completes(source, database):
    fake, url = source
    cfg = build(
        url,
        database,
        {"source": "src.items", "destination": "sql:items", "write": "replace"},
        # Records served are counted by page below: no records asked back.
        resource={"paginate": {"type": "offset", "page_size": 100, "overlap": 0}},
    )
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    with store.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO items (id, name) VALUES (999999, 'stale')")
    fake.delete(5)
    with pytest.raises(JobCancelledError):
        run(cfg, store, should_stop=stop_after(3))
    # Stopped after three pages: readers still see the whole old table.
    assert len(ids(store, "items")) == COUNT + 1
    assert "interlink_stage_items" in tables(store)
    resumed = run(cfg, store)
    assert resumed.ok and resumed.resumed
    assert resumed.counts["read"] == COUNT - 1 - 300, "the resumed read starts after page 3"
    assert ids(store, "items") == [n for n in range(1, COUNT + 1) if n != 5]
    assert "interlink_stage_items" not in tables(store)
    store.close()


# -- trials ----------------------------------------------------------------------------------


def test_a_trial_of_a_replace_pipeline_truncates_nothing_and_moves_no_cursor(source, database):
    """main: `--limit 150` truncated the table and left 150 rows."""
    fake, url = source
    cfg = build(
        url, database, {"source": "src.items", "destination": "sql:items", "write": "replace"}
    )
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    cursor = store.load_state("p").cursor
    trial = run(cfg, store, limit=150)
    assert trial.ok and trial.trial and trial.counts["read"] == 150
    assert "scratch" in (trial.wrote_to or "")
    assert len(ids(store, "items")) == COUNT
    assert store.load_state("p").cursor == cursor
    assert not {t for t in tables(store) if t.startswith("interlink_trial")}
    store.close()


def test_a_trial_of_a_merge_pipeline_writes_rows_but_leaves_the_state(source, database):
    fake, url = source
    cfg = build(url, database, {"source": "src.items", "destination": "sql:items"})
    store = Store.open(cfg.database)
    trial = run(cfg, store, limit=150)
    assert trial.ok and trial.wrote_to == "table items" and trial.counts["created"] == 150
    assert store.load_state("p") == type(store.load_state("p"))()
    assert store.runs("p")[0]["trial"]
    full = run(cfg, store)
    assert full.ok and full.counts["read"] == COUNT and not full.resumed
    store.close()


# -- deletions -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_deletes_apply_after_a_complete_full_read_only(source, database, mode):
    fake, url = source
    cfg = build(url, database, {"source": "src.items", "destination": "sql:items", "deletes": mode})
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    fake.delete(3, 500)
    incremental = run(cfg, store)
    assert incremental.ok and incremental.counts["deleted"] == 0, (
        "an incremental read proves nothing"
    )
    full = run(cfg, store, full_refresh=True)
    assert full.ok and full.counts["deleted"] == 2
    if mode == "hard":
        assert len(ids(store, "items")) == COUNT - 2
    else:
        assert ids(store, "items", "WHERE _deleted_at IS NOT NULL") == [3, 500]
        assert len(ids(store, "items", "WHERE _deleted_at IS NULL")) == COUNT - 2
    # Nothing is deleted twice, and a record that comes back is live again.
    assert run(cfg, store, full_refresh=True).counts["deleted"] == 0
    assert "interlink_seen_items" not in tables(store)
    store.close()


def test_deletes_survive_an_interrupted_full_read(source, database):
    fake, url = source
    cfg = build(
        url, database, {"source": "src.items", "destination": "sql:items", "deletes": "hard"}
    )
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    fake.delete(10, 900)
    with pytest.raises(JobCancelledError):
        run(cfg, store, full_refresh=True, should_stop=stop_after(4))
    resumed = run(cfg, store)
    assert resumed.ok and resumed.resumed and resumed.counts["deleted"] == 2
    assert len(ids(store, "items")) == COUNT - 2
    store.close()


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_deleted_field_applies_reported_deletions_on_incremental_reads(source, database, mode):
    fake, url = source
    cfg = build(
        url,
        database,
        {
            "source": "src.items",
            "destination": "sql:items",
            "deletes": mode,
            "deleted_field": "deleted",
        },
        resource={"params": {"include_deleted": "1"}},
    )
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    fake.delete(7)
    fake.touch(8, name="renamed")
    second = run(cfg, store)
    assert second.ok and second.counts["deleted"] == 1
    if mode == "hard":
        assert 7 not in ids(store, "items")
    else:
        assert ids(store, "items", "WHERE _deleted_at IS NOT NULL") == [7]
    store.close()


# -- full refresh retried --------------------------------------------------------------------


def test_a_full_refresh_of_an_append_table_retried_never_doubles_it(source, database):
    """main: a killed full refresh retried started over on top of what it had written
    (3,000 source rows became 4,500)."""
    fake, url = source
    cfg = build(
        url, database, {"source": "src.items", "destination": "sql:items", "write": "append"}
    )
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    with pytest.raises(JobCancelledError):
        run(cfg, store, full_refresh=True, should_stop=stop_after(5))
    assert len(ids(store, "items")) == COUNT, "the table is untouched until the swap"
    retried = run(cfg, store, full_refresh=True)
    assert retried.ok and retried.resumed
    assert len(ids(store, "items")) == COUNT
    store.close()


# -- a changed source ------------------------------------------------------------------------


def test_state_made_for_other_source_settings_is_refused(source, database):
    fake, url = source
    pipeline = {"source": "src.items", "destination": "sql:items"}
    store = Store.open(build(url, database, pipeline).database)
    assert run(build(url, database, pipeline), store).ok
    changed = build(url, database, pipeline, resource={"params": {"score": "3"}})
    with pytest.raises(StateMismatchError, match="--full-refresh"):
        run(changed, store)
    assert store.runs("p")[0]["status"] == "failed"
    assert run(changed, store, full_refresh=True).ok
    assert run(changed, store).ok, "the new settings' cursor is now the stored one"
    store.close()


def test_on_source_change_full_refresh_reads_the_source_whole(source, database):
    fake, url = source
    pipeline = {
        "source": "src.items",
        "destination": "sql:items",
        "on_source_change": "full_refresh",
    }
    store = Store.open(build(url, database, pipeline).database)
    assert run(build(url, database, pipeline), store).ok
    changed = build(
        url, database, pipeline, resource={"paginate": {"type": "offset", "page_size": 250}}
    )
    again = run(changed, store)
    assert again.ok and again.counts["read"] == COUNT
    assert any("settings changed" in w for w in again.warnings)
    store.close()


# -- incomplete reads ------------------------------------------------------------------------


def test_a_read_short_of_its_total_fails_and_moves_nothing(source, database):
    fake, url = source
    cfg = build(url, database, {"source": "src.items", "destination": "sql:items"})
    store = Store.open(cfg.database)
    fake.lie_total = 40
    with pytest.raises(IncompleteReadError):
        run(cfg, store)
    assert store.load_state("p").cursor is None
    assert store.runs("p")[0]["status"] == "failed"
    store.close()


def test_an_incomplete_read_under_warn_moves_no_cursor_and_deletes_nothing(source, database):
    fake, url = source
    cfg = build(
        url,
        database,
        {"source": "src.items", "destination": "sql:items", "deletes": "hard"},
        resource={"on_total_mismatch": "warn"},
    )
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    cursor = store.load_state("p").cursor
    fake.delete(1, 2)
    fake.touch(3)
    fake.lie_total = 40
    short = run(cfg, store, full_refresh=True)
    assert short.ok and short.warnings, "the user chose warn: the run says what it saw"
    assert short.counts["deleted"] == 0, "never delete on an incomplete read"
    assert len(ids(store, "items")) == COUNT
    assert store.load_state("p").cursor == cursor, "the cursor did not move"
    store.close()


def test_replace_never_swaps_in_an_incomplete_read(source, database):
    fake, url = source
    cfg = build(
        url,
        database,
        {"source": "src.items", "destination": "sql:items", "write": "replace"},
        resource={"on_total_mismatch": "warn"},
    )
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    fake.delete(*range(1, 101))
    fake.lie_total = 40
    with pytest.raises(SyncError, match="left as it was"):
        run(cfg, store)
    assert len(ids(store, "items")) == COUNT
    assert "interlink_stage_items" not in tables(store)
    store.close()


def with_row_13(url: str, database: str, **pipeline: Any) -> tuple[InterlinkConfig, Store]:
    """A pipeline whose mapping fails record 13, into a table that already has its row."""
    cfg = build(
        url,
        database,
        {
            "source": "src.items",
            "destination": "sql:items",
            "fields": {"id": "id", "name": {"call": "tests.sync.fake_source:name_unless_13"}},
            **pipeline,
        },
    )
    store = Store.open(cfg.database)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        conn.exec_driver_sql("INSERT INTO items VALUES (13, 'item 13')")
    return cfg, store


def test_rows_unseen_are_kept_when_records_of_the_read_failed(source, database):
    """A record that failed is still in the source: its row must not be deleted as unseen."""
    fake, url = source
    cfg, store = with_row_13(url, database, deletes="hard")
    fake.delete(20)
    first = run(cfg, store)
    assert first.status == "completed_with_errors" and first.counts["failed"] == 1
    assert 13 in ids(store, "items"), "the failed record's row stays"
    assert first.counts["deleted"] == 0
    assert any("not deleted" in w for w in first.warnings)
    store.close()


def test_a_widened_column_is_recorded_with_its_previous_type(source, database):
    fake, url = source
    cfg = build(url, database, {"source": "src.items", "destination": "sql:items"})
    store = Store.open(cfg.database)
    assert run(cfg, store).ok
    fake.touch(5, score=10.5)
    assert run(cfg, store).ok
    with store.engine.connect() as conn:
        changes = conn.exec_driver_sql(
            "SELECT column_type, previous_type FROM interlink_schema_changes "
            "WHERE column_name = 'score' ORDER BY id"
        ).all()
        score = conn.exec_driver_sql("SELECT score FROM items WHERE id = 5").scalar_one()
    assert [tuple(c) for c in changes] == [("integer", None), ("float", "integer")]
    assert score == 10.5
    store.close()


def test_failures_earlier_in_a_resumed_read_still_block_deletions(source, database):
    """Review finding: a resumed run started its counters at zero, so a record that failed
    before the interruption no longer blocked deletions by absence."""
    fake, url = source
    cfg, store = with_row_13(url, database, deletes="hard")
    with pytest.raises(JobCancelledError):
        run(cfg, store, should_stop=stop_after(2))
    resumed = run(cfg, store)
    assert resumed.resumed and resumed.status == "completed_with_errors"
    assert 13 in ids(store, "items") and resumed.counts["deleted"] == 0
    store.close()


def test_replace_never_swaps_in_a_table_missing_failed_records(source, database):
    fake, url = source
    cfg, store = with_row_13(url, database, write="replace")
    with pytest.raises(SyncError, match="1 records failed"):
        run(cfg, store)
    assert ids(store, "items") == [13], "the old table stays"
    assert "interlink_stage_items" not in tables(store)
    store.close()


def test_soft_deletes_mark_rows_when_a_full_read_sees_none(source, database):
    fake, url = source
    cfg = build(
        url, database, {"source": "src.items", "destination": "sql:items", "deletes": "soft"}
    )
    store = Store.open(cfg.database)
    with store.engine.begin() as conn:  # a table made before `deletes: soft` was set
        conn.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        conn.exec_driver_sql("INSERT INTO items VALUES (1, 'gone')")
    fake.delete(*range(1, COUNT + 1))
    result = run(cfg, store)
    assert result.ok and result.counts["deleted"] == 1
    assert ids(store, "items", "WHERE _deleted_at IS NOT NULL") == [1]
    store.close()


def test_a_child_resource_cannot_be_appended(source, database):
    """Review finding: a resumed child read re-reads a parent page's children, which an
    append table would hold twice."""
    fake, url = source
    raw = config(
        url, database, {"p": {"source": "src.children", "destination": "sql:c", "write": "append"}}
    )
    raw["resources"]["src"]["children"] = {
        "path": "/items/{parent.id}",
        "parent": "items",
        "records": "data",
    }
    cfg = InterlinkConfig.model_validate(raw)
    store = Store.open(cfg.database)
    with pytest.raises(ConfigError, match="write: merge"):
        run(cfg, store)
    store.close()


def test_the_fingerprint_covers_headers_and_the_connections_base_url(source, database):
    from interlink.sync._fingerprint import source_fingerprint

    fake, url = source
    pipeline = {"source": "src.items", "destination": "sql:items"}
    base = source_fingerprint(build(url, database, pipeline), "src.items", incremental=True)
    tenant = build(url, database, pipeline, resource={"headers": {"X-Tenant": "b"}})
    moved = InterlinkConfig.model_validate(config("http://127.0.0.1:1", database, {"p": pipeline}))
    assert source_fingerprint(tenant, "src.items", incremental=True) != base
    assert source_fingerprint(moved, "src.items", incremental=True) != base


@pytest.mark.postgres
def test_a_run_with_failed_records_ends_recorded_on_postgresql(source, postgres_url):
    """Review finding: `completed_with_errors` did not fit interlink_runs.status (20
    characters) on PostgreSQL: the run's end was never recorded and its lock stayed."""
    fake, url = source
    raw = config(
        url,
        postgres_url,
        {
            "failing_pg": {
                "source": "src.items",
                "destination": "sql:failing_pg",
                "fields": {"id": "id", "name": {"call": "tests.sync.fake_source:name_unless_13"}},
            }
        },
    )
    cfg = InterlinkConfig.model_validate(raw)
    store = Store.open(cfg.database)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS failing_pg")
        conn.exec_driver_sql("DELETE FROM interlink_state WHERE pipeline = 'failing_pg'")
        conn.exec_driver_sql("DELETE FROM interlink_locks WHERE pipeline = 'failing_pg'")
        conn.exec_driver_sql("DELETE FROM interlink_outstanding WHERE pipeline = 'failing_pg'")

    async def go() -> RunResult:
        async with Catalog(cfg) as catalog:
            return await run_pipeline(cfg, "failing_pg", store=store, catalog=catalog)

    first = asyncio.run(go())
    assert first.status == "completed_with_errors"
    assert store.runs("failing_pg")[0]["status"] == "completed_with_errors"
    # The lock was released: the next run runs, and fetches record 13 again by id (still
    # failing: it stays owed, in the table interlink_outstanding on PostgreSQL too).
    second = asyncio.run(go())
    assert second.status == "completed_with_errors"
    assert [(e["key"], e["step"]) for e in second.errors] == [("13", "map")]
    with store.read() as conn:
        owed = list_outstanding(conn, "failing_pg")
    assert [(row.record_key, row.attempts) for row in owed] == [("13", 2)]
    store.close()


def test_a_resumed_offset_read_after_deletions_upstream_is_incomplete(source, database):
    """Review finding: a full read resumed at offset 300 after record 5 was deleted skipped
    record 301 (it slid onto a page already read) while every count still agreed."""
    fake, url = source
    cfg = build(
        url, database, {"source": "src.items", "destination": "sql:items", "write": "replace"}
    )
    store = Store.open(cfg.database)
    with pytest.raises(JobCancelledError):
        run(cfg, store, should_stop=stop_after(3))
    fake.delete(5)
    with pytest.raises(IncompleteReadError, match="total fell from 1,000 to 999"):
        run(cfg, store)
    assert not tables(store) & {"items"}, "nothing was swapped in"
    again = run(cfg, store, full_refresh=True)
    assert again.ok
    assert ids(store, "items") == [n for n in range(1, COUNT + 1) if n != 5]
    store.close()


def test_a_replace_records_only_the_columns_its_table_did_not_have(source, database):
    """Review finding: each staging table is new, and every run of a replace recorded all
    of its columns again in interlink_schema_changes."""
    fake, url = source
    cfg = build(
        url, database, {"source": "src.items", "destination": "sql:items", "write": "replace"}
    )
    store = Store.open(cfg.database)

    def changes() -> list[tuple[str, str]]:
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT column_name, column_type FROM interlink_schema_changes ORDER BY id"
            )
            return [tuple(row) for row in rows]

    assert run(cfg, store).ok
    first = changes()
    assert {column for column, _ in first} == {"id", "name", "score", "updated_at"}
    assert run(cfg, store).ok
    assert changes() == first, "nothing new on the second replace"
    fake.touch(2, colour="red")
    assert run(cfg, store).ok
    assert changes() == [*first, ("colour", "text")]
    store.close()


def test_a_state_stored_before_single_took_total_path_still_matches():
    """`paginate: single` gained `total_path`; left at its default it must not change the
    fingerprint of a state stored before (the value is what 6585af1 computed), or every
    incremental one-page source would stop with StateMismatchError after an upgrade."""
    from interlink.sync._fingerprint import source_fingerprint

    def fingerprint(paginate: dict[str, Any] | None) -> str:
        items: dict[str, Any] = {
            "path": "/items",
            "records": "data",
            "incremental": {"field": "updated_at", "param": "since"},
        }
        if paginate is not None:
            items["paginate"] = paginate
        config = InterlinkConfig.model_validate(
            {
                "connections": {"api": {"base_url": "http://127.0.0.1:1"}},
                "resources": {"api": {"items": items}},
            }
        )
        return source_fingerprint(config, "api.items", incremental=True)

    assert fingerprint(None) == fingerprint({"type": "single"}) == "56f003cc485be8ee"
    assert fingerprint({"type": "single", "total_path": "total"}) != "56f003cc485be8ee"
