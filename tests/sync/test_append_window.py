"""The lookups of an incremental `append` read's window use an index, not the whole table.

An incremental read of an append table meets again the records from its cursor to the
highest value the read before saw (tests/sync/test_signpost.py), and appends each only
when the table has no identical row. An append table keeps every version of every
record, so a lookup that reads the whole table grows with it, and with a long `lag`
every record of every run is looked up: each run slower than the last. The lookups are
answered by an index on the incremental field's column, made by the first read that
looks (`interlink_cursor_<table>_<column>`); where it cannot be made, the run goes on
and says so.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from interlink.store import Store, _sqlite_file
from interlink.sync._table_writer import TableWriter
from tests.sync.test_signpost import COUNT, LiveSource, _config, _fresh, _rows, _run


def _indexes(store: Store, table: str) -> dict[str, str]:
    """The table's indexes: name -> definition."""
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            found = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                (table,),
            )
        else:
            found = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (table,)
            )
        return {str(name): str(sql) for name, sql in found}


def test_a_window_read_indexes_the_cursor_column_and_finds_what_it_appended(
    source: tuple[LiveSource, str], database: str
) -> None:
    live, url = source
    store = _fresh(database)
    try:
        cfg = _config(url, database, "append", lag="2d")  # every record in every window
        assert _run(cfg, store).ok
        assert "interlink_cursor_items_updated_at" not in _indexes(store, "items")  # nothing looked
        again = _run(cfg, store)
        assert again.ok and again.counts["unchanged"] == COUNT and again.counts["created"] == 0
        index = _indexes(store, "items")["interlink_cursor_items_updated_at"]
        assert "updated_at" in index
        live.touch(7)
        assert _run(cfg, store).ok
        assert [r for r in _rows(store) if r[0] == 7] == [(7, "edited 7"), (7, "item 7")]
        assert len(_rows(store)) == COUNT + 1
    finally:
        store.close()


def _traced(statements: list[str]) -> Callable[..., sqlite3.Connection]:
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.set_trace_callback(statements.append)
        return connection

    return traced


def test_each_lookup_searches_the_index(
    source: tuple[LiveSource, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's plan of every lookup a run made (the statements as run, values bound):
    a search of the index, never a scan of the table, here one of 20,000 rows."""
    _, url = source
    path = tmp_path / "state.db"
    database = f"sqlite:///{path}"
    cfg = _config(url, database, "append", lag="2d")
    store = Store.open(database)
    try:
        assert _run(cfg, store).ok
        with sqlite3.connect(path) as history:  # earlier versions, a year back
            history.executemany(
                "INSERT INTO items (id, name, updated_at) VALUES (?, ?, ?)",
                [
                    (n % COUNT + 1, f"old {n}", f"2020-01-01T00:{n % 60:02}:00Z")
                    for n in range(20_000)
                ],
            )
    finally:
        store.close()
    statements: list[str] = []
    monkeypatch.setattr(_sqlite_file.sqlite3, "connect", _traced(statements))
    store = Store.open(database)
    try:
        again = _run(cfg, store)
        first = len(statements)
        assert _run(cfg, store).ok  # the index is there: no DDL
    finally:
        store.close()
    monkeypatch.undo()
    statements, later = statements[:first], statements[first:]
    assert [s for s in statements if s.startswith("CREATE INDEX")], statements
    assert not [s for s in later if s.startswith("CREATE")], later
    assert again.ok and again.counts["unchanged"] == COUNT, again.counts
    lookups = [s for s in statements if s.startswith('SELECT 1 FROM "items" WHERE')]
    assert len(lookups) == COUNT, len(lookups)
    with sqlite3.connect(path) as conn:
        plans = {
            " / ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {s}"))
            for s in lookups
        }
    assert plans == {"SEARCH items USING INDEX interlink_cursor_items_updated_at (updated_at=?)"}, (
        plans
    )


@pytest.fixture
def source() -> Any:
    from interlink.sandbox import SandboxServer

    live = LiveSource()
    with SandboxServer(live.app()) as server:
        yield live, server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.parametrize(
    ("dialect", "declared", "plain"),
    [
        ("sqlite", "TEXT", True),
        ("sqlite", "VARCHAR(20)", True),
        ("sqlite", "CLOB", True),
        ("sqlite", "", False),  # no affinity: an integer stays one
        ("sqlite", "DATETIME", False),  # numeric affinity
        ("sqlite", "JSON", False),
        ("postgresql", "text", True),
        ("postgresql", "varchar(20)", True),
        ("postgresql", "varchar(20)[]", False),
        ("postgresql", "char(5)", False),
        ("postgresql", "timestamptz", False),
        ("postgresql", "uuid", False),
    ],
)
def test_only_a_column_of_plain_text_is_compared_as_is(
    dialect: str, declared: str, plain: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Where `column = ?` could mean something else than `CAST(column AS TEXT) = ?` (a
    column without affinity holding the integer 5 against "5", an array against "{x,y}"),
    the lookup keeps the cast, and no index is made for it."""
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'kinds.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    store = Store.open(url)
    try:
        with store.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS kinds")
            conn.exec_driver_sql(f"CREATE TABLE kinds (id INTEGER, v {declared})")
        writer = TableWriter(store.dialect, "kinds", primary_key=(), mode="append")
        with store.begin() as conn:
            writer.prepare(conn, [])
            assert writer.holds_plain_text("v") is plain
            assert writer.compared_as_is("id")
            conn.exec_driver_sql("DROP TABLE kinds")
    finally:
        store.close()


def test_a_role_that_may_write_but_not_own_the_table_runs_and_is_told(
    source: tuple[LiveSource, str], postgres_url: str
) -> None:
    """On PostgreSQL only the table's owner may index it. A role that may read and
    write it (and interlink's tables) still runs: the lookups read the table, every
    record is right, and the run's warnings say why and what to do."""
    live, url = source
    store = _fresh(postgres_url)
    role = f"interlink_writer_{uuid.uuid4().hex[:8]}"
    try:
        cfg = _config(url, postgres_url, "append", lag="2d")
        assert _run(cfg, store).ok  # the table, made by its owner
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'CREATE ROLE "{role}" LOGIN')
            admin.execute(
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"'
            )
            admin.execute(
                f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO "{role}"'
            )
        parts = urlsplit(postgres_url)
        as_role = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
        writer = Store.open(as_role)
        try:
            live.touch(7)
            run = _run(_config(url, as_role, "append", lag="2d"), writer)
        finally:
            writer.close()
        assert run.ok, run
        assert run.counts["unchanged"] == COUNT - 1 and run.counts["created"] == 1
        said = [w for w in run.warnings if "could not index updated_at" in w]
        assert said and "must be owner" in said[0], run.warnings
        assert "interlink_cursor_items_updated_at" not in _indexes(store, "items")
        assert [r for r in _rows(store) if r[0] == 7] == [(7, "edited 7"), (7, "item 7")]
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')
        store.close()
