"""Large batches on SQLite, which go `ROWS_PER_INSERT` rows to a statement: what lands in
the table and the created / updated / unchanged counts are exactly what one statement
per row gave, over whole statements and a remainder, keys repeated within a statement,
rows left unchanged, and tables so wide that fewer rows fit SQLite's parameter limit.
Through sqlite3 (an SQLite file's Store, as every run) and SQLAlchemy's connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from interlink.store import Store, create_engine
from interlink.sync import _insert_sql as insert_module
from interlink.sync._insert_sql import ROWS_PER_INSERT
from interlink.sync._table_writer import TableWriter


@pytest.fixture(params=["sqlite3", "sqlalchemy"])
def begin(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path / 'batches.db'}"
    store = Store.open(url)
    if request.param == "sqlite3":
        yield store.begin
    else:
        engine = create_engine(url)
        yield engine.begin
        engine.dispose()
    store.close()


def _load(begin: Any, writer: TableWriter, records: list[dict[str, Any]]) -> tuple[int, int, int]:
    transaction: AbstractContextManager[Any] = begin()
    with transaction as conn:
        writer.prepare(conn, records)
        counts = writer.write(conn, records)
    assert not counts.failures
    return counts.created, counts.updated, counts.unchanged


def _table(tmp_path: Path, table: str) -> dict[Any, tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "batches.db") as conn:
        return {row[0]: row for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY 1')}


def _customer(n: int, name: str = "a") -> dict[str, Any]:
    return {"id": n, "name": f"{name}{n}", "score": n * 1.5, "tags": [n, "x"], "ok": n % 2 == 0}


@pytest.mark.parametrize("size", [ROWS_PER_INSERT - 1, ROWS_PER_INSERT, 250, 1_000])
def test_a_merge_counts_and_stores_what_it_did_row_by_row(begin, tmp_path, size):
    writer = TableWriter("sqlite", "customers", primary_key=["id"], mode="merge")
    first = [_customer(n) for n in range(size)]
    assert _load(begin, writer, first) == (size, 0, 0)
    changed = set(range(0, size, 7))
    again = [_customer(n, "b" if n in changed else "a") for n in range(size)]
    again += [_customer(n) for n in range(size, size + 3)]  # and three new ones
    assert _load(begin, writer, again) == (3, len(changed), size - len(changed))
    rows = _table(tmp_path, "customers")
    assert len(rows) == size + 3
    assert rows[7][1] == ("b7" if size > 7 else "a7")
    assert rows[1] == (1, "a1", 1.5, '[1,"x"]', 0)


def test_a_key_twice_in_one_statement_as_one_statement_a_row_did(begin, tmp_path, monkeypatch):
    batch = [_customer(n) for n in range(150)]
    batch[40] = _customer(10, "last")  # 10 twice within the first statement's rows
    batch[140] = _customer(130, "later")  # and 130 across two statements
    results = []
    for per in (1, ROWS_PER_INSERT):
        monkeypatch.setattr(insert_module, "ROWS_PER_INSERT", per)
        writer = TableWriter("sqlite", f"customers_{per}", primary_key=["id"], mode="merge")
        results.append((_load(begin, writer, batch), _table(tmp_path, f"customers_{per}")))
    (row_by_row, by_row), (many, by_many) = results
    assert many == row_by_row
    assert by_many == by_row
    assert by_many[10][1] == "last10" and by_many[130][1] == "later130"


def test_an_append_of_a_whole_page(begin, tmp_path):
    writer = TableWriter("sqlite", "events", mode="append")
    batch = [{"n": n, "text": f"t{n}"} for n in range(1_000)]
    assert _load(begin, writer, batch) == (1_000, 0, 0)
    assert _load(begin, writer, batch) == (1_000, 0, 0)
    with sqlite3.connect(tmp_path / "batches.db") as conn:
        assert conn.execute('SELECT COUNT(*), SUM(n) FROM "events"').fetchone() == (
            2_000,
            2 * sum(range(1_000)),
        )


def test_a_table_too_wide_for_many_rows_a_statement(begin, tmp_path, monkeypatch):
    monkeypatch.setattr(insert_module, "SQLITE_MAX_MARKS", 400)  # 150 columns: 2 rows
    sent: list[int] = []
    writer = TableWriter("sqlite", "wide", primary_key=["id"], mode="merge")
    real = writer._inserts.statement

    def statement(kinds: Any, keys: Any, columns: tuple[str, ...], rows: int = 1) -> str:
        sent.append(rows)
        return real(kinds, keys, columns, rows)

    monkeypatch.setattr(writer._inserts, "statement", statement)
    batch = [{"id": n, **{f"c{i}": n + i for i in range(149)}} for n in range(5)]
    assert _load(begin, writer, batch) == (5, 0, 0)
    assert set(sent) == {2, 1}, "two rows to a statement, then the last one alone"
    rows = _table(tmp_path, "wide")
    assert rows[4][149] == 4 + 148
