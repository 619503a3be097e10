"""PostgreSQL's COPY path of TableWriter (`_pg_copy`) against the row-by-row path it
replaces for large batches: the same batches into two tables of the PostgreSQL of
INTERLINK_TEST_POSTGRES_URL, one writer forced onto COPY, the other onto executemany, and
the tables and counts compared. Each test checks that COPY really ran (a spy on it)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from interlink.store import create_engine
from interlink.sync import _pg_copy
from interlink.sync._table_writer import TableWriter, WriteCounts

pytestmark = pytest.mark.postgres

ROW_BY_ROW = 10**9


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def tables(engine: sa.Engine) -> Iterator[tuple[str, str]]:
    stem = f"copy_{uuid.uuid4().hex[:10]}"
    pair = (f"{stem}_copy", f"{stem}_rows")
    yield pair
    with engine.begin() as conn:
        for table in pair:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables each COPY went into (the spy wraps the function TableWriter calls)."""
    seen: list[str] = []
    real = _pg_copy.copy_rows

    def spy(conn: Any, table: str, *args: Any) -> int:
        seen.append(table)
        return real(conn, table, *args)

    monkeypatch.setattr(_pg_copy, "copy_rows", spy)
    return seen


def _writer(engine: sa.Engine, table: str, key: Sequence[str], min_rows: int) -> TableWriter:
    writer = TableWriter(engine, table, primary_key=key, mode="merge" if key else "append")
    writer.copy_min_rows = min_rows
    return writer


def _load(engine: sa.Engine, writer: TableWriter, records: list[dict[str, Any]]) -> WriteCounts:
    with engine.begin() as conn:
        writer.prepare(conn, records)
        return writer.write(conn, records)


def _contents(url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        columns = [
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position",
                (table,),
            )
        ]
        names = ", ".join(f'"{c}"::text' for c in columns)
        rows = conn.execute(f'SELECT {names} FROM "{table}"').fetchall()
    return [tuple(columns)] + sorted(rows, key=repr)


def _staged(tables: list[str]) -> bool:
    """Whether every COPY went into a merge's stage."""
    return all(table.startswith(_pg_copy.STAGE_PREFIX) for table in tables)


def _counts(counts: WriteCounts) -> tuple[int, int, int, list[Any]]:
    return (counts.created, counts.updated, counts.unchanged, counts.failures)


def _odd(n: int) -> dict[str, Any]:
    """A record whose values test COPY's text format: tabs, newlines, backslashes, \\N,
    quotes, non-ASCII, floats at their edges, big integers, nested JSON, NULLs."""
    return {
        "id": n,
        "name": ["tab\there", "line\nbreak", "back\\slash", "\\N", 'quo"te', "Zoë ✓", ""][n % 7],
        "amount": [0.1, 1e300, -0.0, 2.5e-308, 12345678.125, math.nan, 7][n % 7],
        "big": 2**62 + n,
        "flag": [True, False, None][n % 3],
        "meta": {"k": "v\\\t\n", "list": [1, 2.5, None, "ü"], "n": n},
        "tags": ["a", "b\\c"] if n % 2 else [],
        "note": None if n % 4 else f"note {n}",
    }


def test_a_merge_by_copy_writes_what_the_row_by_row_upsert_writes(
    engine: sa.Engine, tables: tuple[str, str], postgres_url: str, copies: list[str]
) -> None:
    by_copy, by_rows = tables
    fast = _writer(engine, by_copy, ["id"], 1)
    slow = _writer(engine, by_rows, ["id"], ROW_BY_ROW)
    first = [_odd(n) for n in range(1, 121)]
    # The second batch: 40 unchanged, 40 changed (one in a nested value), 40 new, and a
    # new field that adds a column; the third widens `big` to text with a 2**70.
    second = [dict(_odd(n)) for n in range(81, 201)]
    for record in second[40:80]:
        record["meta"] = {**record["meta"], "n": -1}
    for record in second:
        record["extra"] = "x"
    third = [{**_odd(n), "big": 2**70 + n} for n in range(1, 61)]
    for batch in (first, second, third):
        assert _counts(_load(engine, fast, batch)) == _counts(_load(engine, slow, batch))
    assert copies[0] == by_copy, "a batch of new keys is copied into the table itself"
    assert len(copies) == 3 and _staged(copies[1:]), "the others through a stage"
    assert copies[1] != copies[2], "a new column, then a wider one: a new stage each time"
    assert _counts(_load(engine, fast, second)) == (0, 0, 120, [])
    assert _contents(postgres_url, by_copy)[1:] == _contents(postgres_url, by_rows)[1:]
    assert len(_contents(postgres_url, by_copy)) == 1 + 200


def test_an_append_by_copy_writes_what_executemany_writes(
    engine: sa.Engine, tables: tuple[str, str], postgres_url: str, copies: list[str]
) -> None:
    by_copy, by_rows = tables
    fast = _writer(engine, by_copy, [], 1)
    slow = _writer(engine, by_rows, [], ROW_BY_ROW)
    batches = [[_odd(n) for n in range(1, 80)], [_odd(n) for n in range(1, 80)]]
    for batch in batches:
        assert _counts(_load(engine, fast, batch)) == _counts(_load(engine, slow, batch))
    assert copies == [by_copy, by_copy]
    assert _contents(postgres_url, by_copy)[1:] == _contents(postgres_url, by_rows)[1:]


def test_a_batch_with_a_key_twice_is_upserted_row_by_row_and_the_later_row_wins(
    engine: sa.Engine, tables: tuple[str, str], postgres_url: str, copies: list[str]
) -> None:
    by_copy, by_rows = tables
    fast = _writer(engine, by_copy, ["id"], 1)
    slow = _writer(engine, by_rows, ["id"], ROW_BY_ROW)
    batch = [{"id": n % 30, "v": n} for n in range(60)]
    assert _counts(_load(engine, fast, batch)) == _counts(_load(engine, slow, batch))
    assert copies == [], "one INSERT cannot update a row twice: no COPY"
    assert _contents(postgres_url, by_copy)[1:] == _contents(postgres_url, by_rows)[1:]
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute(f'SELECT v FROM "{by_copy}" WHERE id = 0').fetchone() == (30,)


def test_a_composite_key_merges_by_copy(
    engine: sa.Engine, tables: tuple[str, str], postgres_url: str, copies: list[str]
) -> None:
    by_copy, by_rows = tables
    fast = _writer(engine, by_copy, ["shop", "id"], 1)
    slow = _writer(engine, by_rows, ["shop", "id"], ROW_BY_ROW)
    first = [{"shop": s, "id": n, "v": "a"} for s in ("x", "y") for n in range(50)]
    second = [
        {"shop": s, "id": n, "v": "b" if n % 2 else "a"} for s in ("x", "y") for n in range(60)
    ]
    for batch in (first, second):
        assert _counts(_load(engine, fast, batch)) == _counts(_load(engine, slow, batch))
    assert _counts(_load(engine, fast, second)) == (0, 0, 120, [])
    assert copies[0] == by_copy and len(copies) == 3
    assert _staged(copies[1:]) and copies[1] == copies[2]
    assert _contents(postgres_url, by_copy)[1:] == _contents(postgres_url, by_rows)[1:]


def test_rows_copied_in_a_transaction_that_fails_are_not_kept(
    engine: sa.Engine, tables: tuple[str, str], postgres_url: str, copies: list[str]
) -> None:
    """The checkpoint commits with the rows: a batch whose transaction fails after the
    COPY (the lease check, the checkpoint) leaves neither rows nor the stage behind."""
    table = tables[0]
    writer = _writer(engine, table, ["id"], 1)
    _load(engine, writer, [{"id": n, "v": 1} for n in range(10)])
    records = [{"id": n, "v": 2} for n in range(5, 100)]
    with pytest.raises(RuntimeError, match="lease lost"), engine.begin() as conn:
        writer.prepare(conn, records)
        writer.write(conn, records)
        raise RuntimeError("lease lost")
    assert copies[0] == table and _staged(copies[1:]), "the failed batch did COPY"
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute(f'SELECT count(*), max(v) FROM "{table}"').fetchone() == (10, 1)
    with engine.begin() as conn:  # made in the failed transaction: gone with it
        found = conn.exec_driver_sql(f"SELECT to_regclass('pg_temp.{copies[1]}')").scalar()
        assert found is None
        writer.columns = None
        writer.prepare(conn, records)
        assert writer.write(conn, records).created == 90


def test_new_keys_another_writer_added_meanwhile_are_merged_through_the_stage(
    engine: sa.Engine,
    tables: tuple[str, str],
    copies: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`_existing` found none of the batch's keys, but another writer committed one of
    them before the COPY (faked here: `_existing` answers 0 once, though 20 are there):
    the COPY into the table fails on the key, its savepoint is rolled back, and the batch
    is merged through the stage with the right counts."""
    table = tables[0]
    writer = _writer(engine, table, ["id"], 1)
    _load(engine, writer, [{"id": n, "v": "old"} for n in range(20)])
    real = TableWriter._existing
    lies = [0]

    def existing(self: TableWriter, *args: Any) -> int:
        return lies.pop() if lies else real(self, *args)

    monkeypatch.setattr(TableWriter, "_existing", existing)
    counts = _load(engine, writer, [{"id": n, "v": "new"} for n in range(10, 60)])
    assert copies[:2] == [table, table], "the new-keys COPY was tried, and failed"
    assert _staged(copies[2:]) and len(copies) == 3
    assert _counts(counts) == (40, 10, 0, [])
    with engine.connect() as conn:
        values = dict(conn.exec_driver_sql(f'SELECT id, v FROM "{table}"').all())
    assert len(values) == 60 and values[0] == "old" and values[10] == values[59] == "new"


def test_a_role_that_may_not_create_temporary_tables_merges_row_by_row(
    engine: sa.Engine, tables: tuple[str, str], copies: list[str]
) -> None:
    writer = _writer(engine, tables[0], ["id"], 1)
    writer._temp_tables = False  # what can_create_temp_tables answers for such a role
    counts = _load(engine, writer, [{"id": n} for n in range(100)])
    assert counts.created == 100 and copies == []
    with engine.connect() as conn:
        assert _pg_copy.can_create_temp_tables(conn) is True  # the test database's role


def test_a_failed_copy_is_reported_as_sqlalchemy_reports_a_failed_statement(
    engine: sa.Engine, tables: tuple[str, str]
) -> None:
    table = tables[0]
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE TABLE "{table}" (id BIGINT PRIMARY KEY)')
    with pytest.raises(sa.exc.DBAPIError) as raised, engine.begin() as conn:
        _pg_copy.copy_rows(conn, table, ["id"], [(1,), ("not a number",)], quote)
    assert f"[SQL: COPY {table} (id) FROM STDIN]" in str(raised.value)
    assert "invalid input syntax for type bigint" in str(raised.value)


def test_two_merges_in_one_transaction_each_move_only_their_own_rows(
    engine: sa.Engine, tables: tuple[str, str], copies: list[str]
) -> None:
    """The stage outlives a batch within its transaction (it empties at commit): the move
    out of it must take each batch's rows, so the second merge does not upsert the first's
    again (its counts would double, or a key twice in one INSERT would fail it)."""
    table = tables[0]
    writer = _writer(engine, table, ["id"], 1)
    _load(engine, writer, [{"id": n, "v": 0} for n in range(100)])
    with engine.begin() as conn:
        first = [{"id": n, "v": 1} for n in range(60)]
        second = [{"id": n, "v": 2} for n in range(40, 100)]
        writer.prepare(conn, first)
        one = writer.write(conn, first)
        writer.prepare(conn, second)
        two = writer.write(conn, second)
    assert _counts(one) == (0, 60, 0, []) and _counts(two) == (0, 60, 0, [])
    assert _staged(copies[1:]) and copies[1] == copies[2]
    with engine.connect() as conn:
        values = dict(conn.exec_driver_sql(f'SELECT id, v FROM "{table}"').all())
    assert [values[n] for n in (0, 39, 40, 99)] == [1, 1, 2, 2]
