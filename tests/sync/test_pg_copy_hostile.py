"""Hostile cases of PostgreSQL's COPY path of TableWriter (`_pg_copy`) against the
row-by-row path: names that need quoting, the COPY_MIN_ROWS edge, a connection dropped in
the middle of a COPY, a stage a reused session keeps between runs. Each test checks that
its COPY (or its fault) really happened."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from interlink.store import create_engine
from interlink.sync import _pg_copy
from interlink.sync._table_writer import COPY_MIN_ROWS, TableWriter, WriteCounts

pytestmark = pytest.mark.postgres

ROW_BY_ROW = 10**9


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def stem(postgres_url: str) -> Iterator[str]:
    """A unique table-name stem; every table whose name contains it is dropped after."""
    stem = f"hc{uuid.uuid4().hex[:8]}"
    yield stem
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        names = conn.execute(
            "SELECT tablename FROM pg_tables WHERE strpos(tablename, %s) > 0", (stem,)
        ).fetchall()
        for (name,) in names:
            conn.execute(psycopg.sql.SQL("DROP TABLE {}").format(psycopg.sql.Identifier(name)))


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables each COPY went into."""
    seen: list[str] = []
    real = _pg_copy.copy_rows

    def spy(conn: Any, table: str, *args: Any) -> int:
        seen.append(table)
        return real(conn, table, *args)

    monkeypatch.setattr(_pg_copy, "copy_rows", spy)
    return seen


def _writer(engine: sa.Engine, table: str, key: list[str], min_rows: int) -> TableWriter:
    writer = TableWriter(engine, table, primary_key=key, mode="merge" if key else "append")
    writer.copy_min_rows = min_rows
    return writer


def _load(engine: sa.Engine, writer: TableWriter, records: list[dict[str, Any]]) -> WriteCounts:
    with engine.begin() as conn:
        writer.prepare(conn, records)
        return writer.write(conn, records)


def _counts(counts: WriteCounts) -> tuple[int, int, int, int]:
    return (counts.created, counts.updated, counts.unchanged, len(counts.failures))


def _contents(url: str, table: str) -> list[tuple[Any, ...]]:
    """The table's columns with their types, then its rows as text, sorted."""
    ident = psycopg.sql.Identifier
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        names = psycopg.sql.SQL(", ").join(
            psycopg.sql.SQL("{}::text").format(ident(c)) for c, _ in columns
        )
        query = psycopg.sql.SQL("SELECT {} FROM {}").format(names, ident(table))
        rows = conn.execute(query).fetchall()
    return [tuple(columns), *sorted(rows, key=repr)]


def test_table_and_column_names_with_a_percent_sign_go_in_by_copy(
    engine: sa.Engine, stem: str, postgres_url: str, copies: list[str]
) -> None:
    """SQLAlchemy doubles `%` in a quoted name for psycopg's placeholders; COPY's
    statement has none, so it must not be doubled there."""
    odd = {"pct%": 1, "Order": "x", "select": True, "a b": 'q"', 'we"ird': 1.5, "UP": None}
    for key in (["id"], ["pct%"], []):
        name = f"T%{stem} {len(key) + len(key and key[0])}"
        fast = _writer(engine, f"{name} copy", key, 1)
        slow = _writer(engine, f"{name} rows", key, ROW_BY_ROW)
        first = [{"id": n, **odd, "pct%": n} for n in range(60)]
        second = [{**record, "a b": "changed"} for record in first[::2]]
        for batch in (first, second):
            assert _counts(_load(engine, fast, batch)) == _counts(_load(engine, slow, batch))
        assert _contents(postgres_url, f"{name} copy") == _contents(postgres_url, f"{name} rows")
    assert len(copies) == 6


@pytest.mark.parametrize("size", [COPY_MIN_ROWS - 1, COPY_MIN_ROWS, COPY_MIN_ROWS + 1])
def test_batches_around_copy_min_rows_write_the_same_table(
    engine: sa.Engine, stem: str, postgres_url: str, copies: list[str], size: int
) -> None:
    fast = _writer(engine, f"{stem}_copy", ["id"], COPY_MIN_ROWS)
    slow = _writer(engine, f"{stem}_rows", ["id"], ROW_BY_ROW)
    first = [{"id": n, "v": f"a\\N\t{n}", "j": {"n": n}} for n in range(size)]
    second = [{**r, "v": None, "w": 1.5} for r in first[: size // 2]] + [
        {"id": n + 1000, "v": ""} for n in range(size - size // 2)
    ]
    for batch in (first, second):
        assert _counts(_load(engine, fast, batch)) == _counts(_load(engine, slow, batch))
    assert _contents(postgres_url, f"{stem}_copy") == _contents(postgres_url, f"{stem}_rows")
    assert len(copies) == (0 if size < COPY_MIN_ROWS else 2)


class _DropsTheConnection(list[tuple[Any, ...]]):
    """Rows that end their connection's server process half-way through being read."""

    def __init__(self, rows: list[tuple[Any, ...]], url: str, pid: int) -> None:
        super().__init__(rows)
        self.url, self.pid, self.fired = url, pid, False

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for at, row in enumerate(super().__iter__()):
            if at == len(self) // 2:
                with psycopg.connect(self.url, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (self.pid,))
                self.fired = True
            yield row


@pytest.mark.parametrize("existing", [False, True], ids=["straight-in", "through-stage"])
def test_a_connection_dropped_in_the_middle_of_a_copy_leaves_nothing_written(
    engine: sa.Engine,
    stem: str,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    existing: bool,
) -> None:
    table = f"{stem}_drop"
    writer = _writer(engine, table, ["id"], 1)
    _load(engine, writer, [{"id": n, "v": "old"} for n in range(10)])
    real = _pg_copy.copy_rows
    faults: list[_DropsTheConnection] = []

    def dropping(conn: Any, name: str, columns: Any, rows: Any, quote: Any) -> int:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        faults.append(_DropsTheConnection(list(rows), postgres_url, pid))
        return real(conn, name, columns, faults[-1], quote)

    monkeypatch.setattr(_pg_copy, "copy_rows", dropping)
    records = [{"id": n + (0 if existing else 100), "v": "new"} for n in range(5000)]
    with pytest.raises(sa.exc.DBAPIError) as raised:
        _load(engine, writer, records)
    assert faults and faults[0].fired, "the connection was dropped mid-COPY"
    assert "terminating connection" in str(raised.value)
    assert "COPY" in str(raised.value), "the error names the statement"
    with psycopg.connect(postgres_url) as check:
        query = psycopg.sql.SQL("SELECT count(*), count(*) FILTER (WHERE v = 'new') FROM {}")
        found = check.execute(query.format(psycopg.sql.Identifier(table))).fetchone()
    assert found == (10, 0)
    monkeypatch.setattr(_pg_copy, "copy_rows", real)
    writer.columns = None
    counts = _load(engine, writer, records)  # the engine recovers: a new connection
    assert _counts(counts) == ((4990, 10, 0, 0) if existing else (5000, 0, 0, 0))


def test_a_stage_the_session_kept_from_an_earlier_run_does_not_round_values(
    postgres_url: str, stem: str, copies: list[str]
) -> None:
    """The worker reuses its connections, and a stage lives as long as its session. The
    table's column changed type between two runs (NUMERIC(10,2) to DOUBLE PRECISION, the
    same kind to TableWriter): the second run's stage must not be the first's, whose
    NUMERIC(10,2) would round every value on its way through."""
    engine = sa.create_engine(
        postgres_url.replace("postgresql://", "postgresql+psycopg://"), pool_size=1
    )
    table = f"{stem}_kept"
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, amount NUMERIC(10, 2))"
            )
            conn.exec_driver_sql(f"INSERT INTO {table} SELECT g, 0 FROM generate_series(0, 59) g")
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        records = [{"id": n, "amount": n + 0.125} for n in range(60)]
        _load(engine, _writer(engine, table, ["id"], 1), records)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {table} ALTER amount TYPE DOUBLE PRECISION")
        counts = _load(engine, _writer(engine, table, ["id"], 1), records)
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() == pid
            amounts = conn.exec_driver_sql(f"SELECT amount FROM {table} ORDER BY id").scalars()
            assert list(amounts) == [r["amount"] for r in records]
        assert _counts(counts) == (0, 60, 0, 0)
        assert len(copies) == 2 and all(t.startswith(_pg_copy.STAGE_PREFIX) for t in copies)
    finally:
        engine.dispose()


def _unencodable() -> list[dict[str, Any]]:
    """60 records, four with a value no database can take: a lone surrogate (what
    `json.loads` makes of "\\ud800") as text, in JSON, in an object stored as text, and an
    integer past 64 bits inside JSON."""
    records: list[dict[str, Any]] = [{"id": n, "s": "ok", "j": {"n": n}, "t": n} for n in range(60)]
    records[3]["s"] = "lone \ud800"
    records[5]["j"] = {"s": "\udc80"}
    records[7]["j"] = {"n": 2**70}
    records[9]["t"] = {"s": "\ud83d"}  # after a text value: the column is text
    records[10]["t"] = "text"
    return records


FAILED = {
    3: "column s: the text is not valid Unicode (a lone surrogate)",
    5: "column j: str is not valid UTF-8: surrogates not allowed",
    7: "column j: Integer exceeds 64-bit range",
    9: "column t: str is not valid UTF-8: surrogates not allowed",
}


@pytest.mark.parametrize("min_rows", [1, ROW_BY_ROW], ids=["copy", "row-by-row"])
def test_a_value_no_encoding_can_take_fails_its_record_alone(
    engine: sa.Engine, stem: str, min_rows: int
) -> None:
    writer = _writer(engine, f"{stem}_enc", ["id"], min_rows)
    records = _unencodable()
    counts = _load(engine, writer, records)
    failed = {r["id"]: reason.split(", ", 1)[1] for r, reason in counts.failures}
    assert failed == FAILED
    assert _counts(counts) == (56, 0, 0, 4)


def test_on_sqlite_too_a_value_no_encoding_can_take_fails_its_record_alone(
    tmp_path: Any,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'enc.db'}")
    try:
        counts = _load(engine, _writer(engine, "enc", ["id"], 1), _unencodable())
        assert _counts(counts) == (56, 0, 0, 4)
    finally:
        engine.dispose()
