"""Records that failed in a run are owed to the destination until a run writes them.

Review finding: an incremental run moved its cursor past records that failed, and the next
run, reading only what changed since, succeeded (exit 0) with those records missing from
the table for good. Now they are kept in `interlink_outstanding`, fetched again by id at
the end of the next read, and a run that cannot write them ends `completed_with_errors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.sandbox import SandboxServer
from interlink.store import Store, has_table, list_outstanding
from interlink.sync import RunResult, run_pipeline, run_records

from .fake_source import FAILING, REFUSED, FakeSource, config

COUNT = 250
MAPPED = {"id": "id", "name": {"call": "tests.sync.fake_source:name_unless_failing"}}


@pytest.fixture
def source() -> Iterator[FakeSource]:
    fake = FakeSource(COUNT)
    with SandboxServer(fake.app()) as server:
        fake.url = server.url  # type: ignore[attr-defined]
        yield fake
    FAILING.clear()


@pytest.fixture
def database(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'interlink.db'}"


def build(source: FakeSource, database: str, **pipeline: Any) -> InterlinkConfig:
    settings = {"source": "src.items", "destination": "sql:items", "fields": MAPPED, **pipeline}
    url = source.url  # type: ignore[attr-defined]
    return InterlinkConfig.model_validate(config(url, database, {"p": settings}))


def run(cfg: InterlinkConfig, store: Store, **kwargs: Any) -> RunResult:
    async def go() -> RunResult:
        async with Catalog(cfg) as catalog:
            return await run_pipeline(cfg, "p", store=store, catalog=catalog, **kwargs)

    return asyncio.run(go())


def by_id(cfg: InterlinkConfig, store: Store, ids: list[Any]) -> RunResult:
    async def go() -> RunResult:
        async with Catalog(cfg) as catalog:
            return await run_records(cfg, "p", ids, store=store, catalog=catalog)

    return asyncio.run(go())


def ids(store: Store) -> set[int]:
    with store.read() as conn:
        return {row[0] for row in conn.exec_driver_sql("SELECT id FROM items").all()}


def owed(store: Store, pipeline: str = "p") -> dict[str, Any]:
    with store.read() as conn:
        return {row.record_key: row for row in list_outstanding(conn, pipeline)}


def failed_once(
    source: FakeSource, database: str, failing: list[int], **pipeline: Any
) -> tuple[InterlinkConfig, Store]:
    """A pipeline whose first run failed the records `failing` (owed since), and whose
    cause has been fixed since."""
    cfg = build(source, database, **pipeline)
    store = Store.open(cfg.database)
    FAILING.update(failing)
    run(cfg, store)
    FAILING.clear()
    return cfg, store


def test_a_record_that_failed_is_fetched_again_by_the_next_run(source, database):
    """The finding: run 2 read nothing new, exited 0, and record 7 was never written."""
    cfg = build(source, database)
    store = Store.open(cfg.database)
    FAILING.add(7)
    first = run(cfg, store)
    assert first.status == "completed_with_errors" and first.counts["failed"] == 1
    assert 7 not in ids(store) and len(ids(store)) == COUNT - 1
    assert list(owed(store)) == ["7"]
    assert owed(store)["7"].step == "map" and owed(store)["7"].run_id == first.run_id

    FAILING.clear()  # the cause is fixed; the record itself did not change at the source
    source.item_requests = 0
    second = run(cfg, store)
    assert second.status == "succeeded", second.errors
    assert ids(store) == set(range(1, COUNT + 1))
    assert owed(store) == {}
    assert source.item_requests == 1  # the fault path ran: record 7 fetched by id
    assert any("fetched again by id: 1 record that" in w for w in second.warnings)

    third = run(cfg, store)  # nothing owed: nothing fetched by id
    assert third.status == "succeeded" and source.item_requests == 1


def test_a_record_that_still_fails_keeps_the_runs_failing(source, database):
    cfg = build(source, database)
    store = Store.open(cfg.database)
    FAILING.update({7, 9})
    run(cfg, store)
    second = run(cfg, store)
    assert second.status == "completed_with_errors"
    assert second.counts["failed"] == 2
    assert {e["key"] for e in second.errors} == {"7", "9"}
    row = owed(store)["7"]
    assert row.attempts == 2 and row.run_id == second.run_id and row.step == "map"
    assert "record 7 cannot be mapped" in row.error
    FAILING.discard(9)
    third = run(cfg, store)
    assert third.status == "completed_with_errors" and third.counts["failed"] == 1
    assert list(owed(store)) == ["7"] and owed(store)["7"].attempts == 3
    assert 9 in ids(store) and 7 not in ids(store)


def test_a_record_read_again_is_settled_by_the_read(source, database):
    """A failed record that changes at the source comes back with the read itself."""
    cfg, store = failed_once(source, database, [7])
    source.touch(7, name="renamed")
    source.item_requests = 0
    second = run(cfg, store)
    assert second.status == "succeeded" and owed(store) == {}
    assert source.item_requests == 0
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT name FROM items WHERE id = 7").scalar() == "renamed"


def test_without_fetching_by_id_the_runs_fail_until_the_record_comes_back(source, database):
    """`retry_failed: 0`: never fetched by id; every run names the record (step `earlier`)
    until a read brings it (it changed at the source)."""
    cfg = build(source, database, retry_failed=0)
    store = Store.open(cfg.database)
    FAILING.add(7)
    first = run(cfg, store)
    FAILING.clear()
    second = run(cfg, store)
    assert second.status == "completed_with_errors" and second.counts["failed"] == 1
    [error] = second.errors
    assert error["key"] == "7" and error["step"] == "earlier"
    assert f"failed in run {first.run_id} (map: MappingError: field 'name'" in error["error"]
    assert any(
        "retry_failed (0)" in w and "interlink failed forget p" in w for w in second.warnings
    )
    assert store.run(second.run_id)["failed"] == 1
    assert [e["step"] for e in store.record_errors(second.run_id)] == ["earlier"]
    assert owed(store)["7"].attempts == 1  # not tried again: not counted as an attempt
    assert source.item_requests == 0
    source.touch(7)
    third = run(cfg, store)
    assert third.status == "succeeded" and owed(store) == {} and 7 in ids(store)


def test_a_whole_read_that_no_longer_finds_a_record_gives_it_up(source, database):
    cfg, store = failed_once(source, database, [7])
    source.delete(7)
    second = run(cfg, store, full_refresh=True)
    assert second.status == "succeeded", second.errors
    assert owed(store) == {}
    assert any("no longer found at the source (7)" in w for w in second.warnings)


def test_gone_at_the_source_stays_owed_for_an_incremental_read(source, database):
    """A 404 for an owed id is not taken as a deletion (a wrong item_path looks the same)."""
    cfg, store = failed_once(source, database, [7])
    source.delete(7)
    second = run(cfg, store)
    assert second.status == "completed_with_errors"
    assert [e["step"] for e in second.errors] == ["fetch"]
    assert owed(store)["7"].step == "fetch"


def test_a_run_by_id_settles_what_it_writes(source, database):
    cfg, store = failed_once(source, database, [7, 9])
    done = by_id(cfg, store, [7])
    assert done.status == "succeeded"
    assert list(owed(store)) == ["9"]
    assert any(
        "not in the destination yet: 1 record of p that failed (9)" in w for w in done.warnings
    )


def test_dry_runs_and_trials_leave_what_is_owed(source, database):
    cfg, store = failed_once(source, database, [7])
    source.item_requests = 0
    assert run(cfg, store, dry_run=True).status == "succeeded"
    assert run(cfg, store, limit=10).status == "succeeded"
    assert list(owed(store)) == ["7"] and source.item_requests == 0


def test_failures_in_a_batch_rolled_back_are_not_owed(source, database, monkeypatch):
    """Owed in the batch's own transaction: a batch that does not commit owes nothing."""
    from interlink.errors import LeaseLostError
    from interlink.store import Store as StoreClass

    cfg = build(source, database)
    store = Store.open(cfg.database)
    FAILING.add(7)
    calls = {"n": 0}
    real = StoreClass.owe

    def owe_then_fail(self, conn, *args):
        calls["n"] += 1
        real(self, conn, *args)
        raise LeaseLostError("taken over between the owe and the commit")

    monkeypatch.setattr(StoreClass, "owe", owe_then_fail)
    with pytest.raises(LeaseLostError):
        run(cfg, store)
    assert calls["n"] == 1  # the fault fired, inside the batch's transaction
    monkeypatch.undo()
    assert owed(store) == {}
    with store.read() as conn:
        assert not has_table(conn, "items")  # the batch, its table included, rolled back


def _interrupted(cfg: InterlinkConfig, store: Store) -> None:
    """A run stopped after its first page (a worker shutting down), checkpoint kept."""
    from interlink.errors import JobCancelledError

    with pytest.raises(JobCancelledError):
        run(cfg, store, should_stop=lambda: True)


def test_a_resumed_read_fetches_what_failed_before_the_interruption(source, database):
    cfg = build(source, database)
    store = Store.open(cfg.database)
    FAILING.add(7)  # on the first page
    _interrupted(cfg, store)
    assert list(owed(store)) == ["7"]
    FAILING.clear()
    resumed = run(cfg, store)
    assert resumed.resumed and resumed.status == "succeeded", resumed.errors
    assert resumed.counts["failed"] == 0 and source.item_requests == 1
    assert ids(store) == set(range(1, COUNT + 1)) and owed(store) == {}


def test_a_resumed_read_that_still_fails_counts_the_record_once(source, database):
    cfg = build(source, database)
    store = Store.open(cfg.database)
    FAILING.add(7)
    _interrupted(cfg, store)
    resumed = run(cfg, store)
    assert resumed.status == "completed_with_errors"
    assert resumed.counts["failed"] == 1 and [e["key"] for e in resumed.errors] == ["7"]


def test_a_resumed_whole_read_with_deletes_keeps_the_record_owed(source, database):
    """The failures before the interruption held back the read's deletions: they stay
    counted, are neither fetched again in that run nor taken as gone from the source (the
    resumed part never saw the first page), and the next run fetches them."""
    cfg = build(source, database, deletes="hard")
    store = Store.open(cfg.database)
    FAILING.add(7)
    _interrupted(cfg, store)
    FAILING.clear()
    resumed = run(cfg, store, full_refresh=True)
    assert resumed.resumed and resumed.status == "completed_with_errors"
    assert resumed.counts["failed"] == 1
    assert list(owed(store)) == ["7"] and source.item_requests == 0
    assert any("were not deleted" in w for w in resumed.warnings)
    after = run(cfg, store)
    assert after.status == "succeeded" and owed(store) == {} and 7 in ids(store)


def test_on_postgresql(source, postgres_url):
    """The same books on PostgreSQL: owed in the batch's transaction, fetched again,
    settled, given up."""
    from interlink.sync import give_up

    cfg = build(source, postgres_url)
    store = Store.open(cfg.database)
    with store.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS items")
        for table in ("interlink_state", "interlink_locks", "interlink_outstanding"):
            conn.exec_driver_sql(f"DELETE FROM {table} WHERE pipeline = 'p'")
    try:
        FAILING.update({7, 9})
        first = run(cfg, store)
        assert first.status == "completed_with_errors"
        assert sorted(owed(store)) == ["7", "9"]
        FAILING.discard(7)
        second = run(cfg, store)
        assert second.status == "completed_with_errors" and source.item_requests == 2
        assert list(owed(store)) == ["9"] and owed(store)["9"].attempts == 2
        assert 7 in ids(store)
        assert give_up(cfg, store, "p", ["9", "10"]).unknown == ["10"]
        third = run(cfg, store)
        assert third.status == "succeeded" and owed(store) == {}
    finally:
        store.close()


def test_an_id_typed_for_a_run_by_id_that_the_source_lacks_is_not_owed(source, database):
    """A 404 for an id someone typed says the source has no such record: nothing is owed
    (a failed record all the same). A 404 for an owed id stays owed (see above)."""
    cfg = build(source, database)
    store = Store.open(cfg.database)
    done = by_id(cfg, store, [5, 999999])
    assert done.status == "completed_with_errors"
    assert [(e["key"], e["step"]) for e in done.errors] == [("999999", "fetch")]
    assert owed(store) == {}
    FAILING.add(6)
    assert by_id(cfg, store, [6]).status == "completed_with_errors"
    assert list(owed(store)) == ["6"]  # the record exists and failed: owed


def test_an_api_destination_that_refused_a_record_gets_it_from_the_next_run(tmp_path):
    """The sandbox's commerce API answers 422 to an invalid email: a write failure at an API
    destination (its bindings on SQLAlchemy's connection), owed, then created by the next
    run once the mapping sends a valid one, bound, settled."""
    from interlink.sandbox import create_sandbox_app
    from interlink.store import load_bindings

    from .test_records import TOKEN, Commerce, commerce_config

    app = create_sandbox_app(records=40, token=TOKEN, commerce_records=5, commerce_overlap=0)
    with SandboxServer(app) as server:
        database = f"sqlite:///{tmp_path / 'state.db'}"
        cfg = commerce_config(server.url, database)
        fields = cfg.pipelines["to_commerce"].fields
        assert isinstance(fields, dict)
        fields["email"] = {"call": "tests.sync.fake_source:email_unless_failing"}
        store = Store.open(database)
        commerce = Commerce(server.url)
        FAILING.add(12)
        try:

            async def go() -> RunResult:
                async with Catalog(cfg) as catalog:
                    return await run_pipeline(cfg, "to_commerce", store=store, catalog=catalog)

            first = asyncio.run(go())
            assert first.status == "completed_with_errors", first.errors
            assert [(e["key"], e["step"]) for e in first.errors] == [("12", "write")]
            assert list(owed(store, "to_commerce")) == ["12"]
            assert len(commerce.all()) == 5 + 39
            FAILING.clear()
            second = asyncio.run(go())
            assert second.status == "succeeded", second.errors
            assert second.counts["created"] == 1 and len(commerce.all()) == 5 + 40
            assert owed(store, "to_commerce") == {}
            assert "12" in load_bindings(store.engine, "to_commerce", ["12"])
        finally:
            FAILING.clear()
            store.close()


def test_a_refused_staging_table_moves_no_cursor_and_settles_nothing(source, database):
    """Review finding: `write: append` with --full-refresh reads into a staging table, and
    a failed record keeps it from being swapped in; the run failed, but the cursor had
    moved to the end of that read, so the next incremental run never appended what had
    changed since the table's last load. The cursor now stays, and a record owed before
    is settled only by the swap, not by the staging table that was dropped."""
    from interlink.errors import SyncError

    cfg = build(source, database, write="append")
    store = Store.open(cfg.database)
    FAILING.add(7)
    run(cfg, store)  # 7 owed
    FAILING.clear()
    assert run(cfg, store).status == "succeeded"  # 7 fetched again, appended, settled
    source.touch(20, name="changed before the refresh")
    FAILING.update({7, 9})
    cursor = store.load_state("p").cursor
    with pytest.raises(SyncError, match="never swapped in"):
        run(cfg, store, full_refresh=True)
    assert store.load_state("p").cursor == cursor
    FAILING.clear()
    after = run(cfg, store)
    assert after.status == "succeeded", after.errors
    with store.read() as conn:
        names = [r[0] for r in conn.exec_driver_sql("SELECT name FROM items WHERE id = 20")]
    assert names == ["item 20", "changed before the refresh"]
    assert owed(store) == {}


def test_an_owed_record_met_by_a_refused_staging_table_stays_owed(source, database):
    from interlink.errors import SyncError

    cfg = build(source, database, write="replace")
    store = Store.open(cfg.database)
    FAILING.add(7)
    with pytest.raises(SyncError, match="never swapped in"):
        run(cfg, store)
    assert list(owed(store)) == ["7"]
    FAILING.clear()
    FAILING.add(9)  # 7 is written to the staging table, 9 fails: no swap
    with pytest.raises(SyncError, match="never swapped in"):
        run(cfg, store)
    assert sorted(owed(store)) == ["7", "9"]  # 7 is not in the table: still owed
    FAILING.clear()
    third = run(cfg, store)
    assert third.status == "succeeded" and owed(store) == {}
    assert ids(store) == set(range(1, COUNT + 1))


NAN = {
    "id": "id",
    "name": "name",
    "score": {"call": "tests.sync.fake_source:score_unless_failing"},
}


@pytest.mark.parametrize(
    "destination",
    [
        {"write": "append"},  # an append table has no key column
        {"destination": {"sql": "items", "primary_key": ["id", "name"]}},  # a composite key
        # a key column holding a mapped value, not the source's
        {
            "fields": {**NAN, "ref": {"call": "tests.sync.fake_source:prefixed_id"}},
            "destination": {"sql": "items", "primary_key": "ref"},
        },
    ],
    ids=["append", "composite-key", "mapped-key"],
)
def test_a_record_the_table_refuses_is_owed_by_its_source_key(source, database, destination):
    """Review finding: the table writer named a refused row by the destination's key,
    which an append table or a composite key does not have (None: nothing owed, and the
    next run succeeded with the row missing) and a mapped key holds in another form (owed
    as `item-7`, fetched as /items/item-7 for ever)."""
    cfg = build(source, database, **{"fields": NAN, **destination})
    store = Store.open(cfg.database)
    FAILING.add(7)
    first = run(cfg, store)
    assert [(e["key"], e["step"]) for e in first.errors] == [("7", "write")]
    assert "SQLite cannot store NaN" in first.errors[0]["error"]
    assert list(owed(store)) == ["7"]
    second = run(cfg, store)  # the cause is not fixed: fetched again, refused again
    assert second.status == "completed_with_errors" and list(owed(store)) == ["7"]
    FAILING.clear()
    third = run(cfg, store)
    assert third.status == "succeeded", third.errors
    assert owed(store) == {} and 7 in ids(store)


def test_a_write_refused_after_a_mapping_failure_stays_owed(source, database):
    """Review finding: 7 owed for a mapping error, then refused by the table in the retry:
    the batch settled it (the refusal had no key), and the next run succeeded without 7."""
    fields = {
        "id": "id",
        "name": {"call": "tests.sync.fake_source:name_unless_failing"},
        "score": {"call": "tests.sync.fake_source:score_unless_refused"},
    }
    cfg = build(source, database, fields=fields, write="append")
    store = Store.open(cfg.database)
    FAILING.add(7)
    run(cfg, store)  # a mapping error: owed
    assert owed(store)["7"].step == "map"
    FAILING.clear()
    REFUSED.add(7)  # the mapping is fixed, and now the table refuses the row
    try:
        second = run(cfg, store)
        assert second.status == "completed_with_errors"
        assert owed(store)["7"].step == "write"
        assert run(cfg, store).status == "completed_with_errors"
    finally:
        REFUSED.clear()
    assert run(cfg, store).status == "succeeded" and owed(store) == {}


def test_a_record_fetched_after_a_resumed_staged_read_is_settled(source, database):
    """Review finding: after a staged read, the retry by id was still deferred (settled
    only by a swap that had already happened): the record was written and stayed owed."""
    from interlink.errors import SyncError

    cfg = build(source, database, write="replace")
    store = Store.open(cfg.database)
    FAILING.add(7)
    with pytest.raises(SyncError):
        run(cfg, store)
    FAILING.clear()
    _interrupted(cfg, store)  # 7 written to the staging table on page 1
    resumed = run(cfg, store)  # swapped in; 7 fetched again by id into the table itself
    assert resumed.resumed and resumed.status == "succeeded", resumed.errors
    assert 7 in ids(store) and owed(store) == {}


def test_the_records_tried_longest_ago_are_fetched_first(source, database):
    """With more owed than `retry_failed`, each run fetches those tried longest ago, so
    every owed record is tried in turn."""
    cfg = build(source, database, retry_failed=2)
    store = Store.open(cfg.database)
    FAILING.update({3, 5, 7})
    run(cfg, store)
    fetched = []
    for _ in range(3):
        result = run(cfg, store)
        [line] = [w for w in result.warnings if w.startswith("fetched again by id")]
        fetched.append(line.rpartition("(")[2].rstrip(")"))
        assert result.counts["failed"] == 3  # 2 fetched and failing, 1 not fetched
    # Run 2 tried 3 and 5, so run 3 tries 7 first; among those tried in the same run,
    # the key decides.
    assert fetched == ["3, 5", "7, 3", "5, 3"]
