"""The lookups of an incremental `append` read's window use an index, not the whole table.

An incremental read of an append table meets again the records from its cursor to the
highest value the read before saw (tests/sync/test_signpost.py), and appends each only
when the table has no identical row. An append table keeps every version of every
record, so a lookup that reads the whole table grows with it, and with a long `lag`
every record of every run is looked up: each run slower than the last. The lookups are
answered by an index on the incremental field's column, made by the first read that
looks (`interlink_cursor_<table>`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interlink.store import Store, _sqlite_file
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
        assert "interlink_cursor_items" not in _indexes(store, "items")  # nothing looked
        again = _run(cfg, store)
        assert again.ok and again.counts["unchanged"] == COUNT and again.counts["created"] == 0
        index = _indexes(store, "items")["interlink_cursor_items"]
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
    finally:
        store.close()
    monkeypatch.undo()
    assert again.ok and again.counts["unchanged"] == COUNT, again.counts
    lookups = [s for s in statements if s.startswith('SELECT 1 FROM "items" WHERE')]
    assert len(lookups) == COUNT, len(lookups)
    with sqlite3.connect(path) as conn:
        plans = {
            " / ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {s}"))
            for s in lookups
        }
    assert plans == {"SEARCH items USING INDEX interlink_cursor_items (updated_at=?)"}, plans


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
