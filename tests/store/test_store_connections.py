"""The Store's bookkeeping is SQL text that runs on three connections: sqlite3's own (an
SQLite file opened by URL, what every `interlink run` uses), SQLAlchemy's on SQLite (a
Store built on an engine, and every `store.transaction()` caller) and psycopg's on
PostgreSQL (`Store.begin`'s `PgPool`; `store.transaction()` there is SQLAlchemy's). Each
must read back exactly what was written, typed as SQLAlchemy's schema types would give it
(booleans, JSON), and each must read what the others wrote, including rows written
before the Store spoke SQL text (SQLAlchemy's JSON type stored None as the JSON
`null`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.store import Store, create_engine
from interlink.store._books_sql import RUN_FLAGS, RUN_JSON, STATE_FLAGS, STATE_JSON
from interlink.store._schema import runs, state
from tests.jobs.procrastinate_schema import fresh_schema

CURSORS: list[Any] = [1234, 12.5, "2026-12-06T03:00:00Z", {"page": 3, "id": "x"}, [1, "a"], None]


@pytest.fixture(params=["sqlite3", "sqlalchemy on sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgresql":
        with fresh_schema(request.getfixturevalue("postgres_url"), "test_books") as url:
            opened = Store.open(url)
            yield opened
            opened.close()
        return
    url = f"sqlite:///{tmp_path / 'books.db'}"
    Store.open(url).close()  # the tables
    opened = Store.open(url) if request.param == "sqlite3" else Store(create_engine(url))
    assert (opened._sqlite is not None) == (request.param == "sqlite3")
    yield opened
    opened.close()


def test_the_schema_says_which_columns_the_text_sql_converts() -> None:
    def of(table: sa.Table, kind: type) -> set[str]:
        return {c.name for c in table.columns if isinstance(c.type, kind)}

    assert of(runs, sa.Boolean) == set(RUN_FLAGS)
    assert of(runs, sa.JSON) == set(RUN_JSON)
    assert of(state, sa.Boolean) == set(STATE_FLAGS)
    assert of(state, sa.JSON) == set(STATE_JSON)


@pytest.mark.parametrize("cursor", CURSORS)
def test_a_run_reads_back_as_written(store: Store, cursor: Any) -> None:
    run_id = store.begin_run("orders", full_refresh=True)
    with store.begin() as conn:
        store.hold_lock(conn, "orders", run_id)
        store.save_progress(
            conn,
            "orders",
            run_id,
            read_since=cursor,
            checkpoint={"offset": 200, "seen": [1, 2]},
            pending_cursor=cursor,
            counts={"read": 5, "created": 4, "failed": 1},
            fingerprint="fp",
            full_read=True,
        )
        store.record_error(conn, run_id, "orders", key="7", step="map", error="KeyError: x")
    state_now = store.load_state("orders")
    assert state_now.read_since == cursor
    assert state_now.pending_cursor == cursor
    assert state_now.checkpoint == {"offset": 200, "seen": [1, 2]}
    assert state_now.full_read is True and state_now.staged is False
    assert state_now.run_id == run_id and state_now.interrupted
    with store.begin() as conn:
        store.complete_read(conn, "orders", run_id, cursor, fingerprint="fp")
    store.finish_run(
        "orders",
        run_id,
        status="completed_with_errors",
        counts={"read": 5, "created": 4, "failed": 1},
        errors=[{"key": "7", "step": "map", "error": "KeyError: x"}],
        message=None,
        warnings=["a warning"],
    )
    done = store.load_state("orders")
    assert (done.cursor, done.checkpoint, done.read_since, done.full_read) == (
        cursor,
        None,
        None,
        False,
    )
    (row,) = store.runs("orders")
    assert row == store.run(run_id)
    assert row["full_refresh"] is True and row["dry_run"] is False
    assert row["trial"] is False and row["resumed"] is False
    assert row["errors"] == [{"key": "7", "step": "map", "error": "KeyError: x"}]
    assert row["warnings"] == ["a warning"]
    assert (row["read"], row["created"], row["failed"], row["deleted"]) == (5, 4, 1, 0)
    assert row["status"] == "completed_with_errors"
    with store.engine.connect() as conn:  # SQLAlchemy's types read the same row
        typed = dict(conn.execute(sa.select(runs).where(runs.c.id == run_id)).one()._mapping)
    assert row == typed
    (error,) = store.record_errors(run_id)
    assert (error["record_key"], error["step"]) == ("7", "map")


def test_rows_sqlalchemys_json_type_wrote_read_back(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(
            sa.insert(state).values(
                pipeline="old", cursor=None, checkpoint=None, read_since=41, updated_at=1.0
            )
        )
    old = store.load_state("old")
    assert (old.cursor, old.checkpoint, old.read_since, old.interrupted) == (None, None, 41, False)


def test_accounts_runs_are_found_by_prefix_and_like_is_escaped(store: Store) -> None:
    for name in ("a_b", "a_b@x", "axb@y", "a_b@%"):
        run_id = store.begin_run(name)
        store.finish_run(name, run_id, status="succeeded", counts={}, errors=[])
    assert [r["pipeline"] for r in store.runs("a_b")] == ["a_b@%", "a_b@x", "a_b"]
    assert [r["pipeline"] for r in store.runs("a_b@x")] == ["a_b@x"]
    assert len(store.runs(limit=2)) == 2


def test_a_lock_is_taken_once_and_over_only_when_its_lease_ran_out(store: Store) -> None:
    from interlink.errors import PipelineLockedError

    first = store.begin_run("p", lease=0.05)
    with pytest.raises(PipelineLockedError, match=f"already running \\(run {first}"):
        store.take_lock("p", -1)
    import time

    time.sleep(0.1)
    second = store.begin_run("p")
    assert store.run(first)["status"] == "crashed"
    assert not store.heartbeat("p", first) and store.heartbeat("p", second)


def test_a_relative_sqlite_path_is_fixed_when_the_store_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As SQLAlchemy's engine did: a chdir after `open` must not move the database (a new
    connection, such as the lease's heartbeat, opened in another folder made an empty
    file there)."""
    (tmp_path / "here").mkdir()
    (tmp_path / "elsewhere" / ".interlink").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "here")
    store = Store.open("sqlite:///.interlink/state.db")
    try:
        monkeypatch.chdir(tmp_path / "elsewhere")
        with store.begin(), store.read() as other:  # a second connection, opened now
            assert other.exec_driver_sql("SELECT count(*) FROM interlink_runs").scalar() == 0
        run_id = store.begin_run("p")
        assert store.heartbeat("p", run_id)
        assert store.engine.url.database == str(tmp_path / "here" / ".interlink" / "state.db")
    finally:
        store.close()
    assert not (tmp_path / "elsewhere" / ".interlink" / "state.db").exists()


def test_progress_saves_the_state_and_the_counts_first_time_and_after(store: Store) -> None:
    """On PostgreSQL both go in one statement; the first save of a pipeline that has no
    state row yet inserts it, and the counts are saved either way."""
    run_id = store.begin_run("fresh", full_refresh=True)
    for page, counts in enumerate(({"read": 10, "created": 10}, {"read": 20, "created": 18}), 1):
        with store.begin() as conn:
            store.hold_lock(conn, "fresh", run_id)
            store.save_progress(
                conn,
                "fresh",
                run_id,
                read_since=None,
                checkpoint={"page": page},
                pending_cursor=None,
                counts=counts,
            )
        row = store.run(run_id)
        assert row is not None
        assert (row["read"], row["created"]) == (counts["read"], counts["created"])
        assert store.load_state("fresh").checkpoint == {"page": page}
