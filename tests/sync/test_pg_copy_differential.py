"""Differential test of PostgreSQL's COPY path of TableWriter: the same seeded random
batches written once with COPY (batches of COPY_MIN_ROWS or more) and once row by row
(COPY_MIN_ROWS out of reach), and the two tables compared row for row with their column
types, and the counts and failures compared batch for batch.

The values are the ones COPY's text format treats specially (backslashes, tabs, newlines,
carriage returns, `\\N` as a string, empty strings beside NULL, very long and non-BMP
text, the NUL character), JSON with quotes and backslashes, booleans, integers past 64
bits and past 2**53, floats at their edges (NaN, infinities, -0.0, 1e308, the smallest
subnormal), and columns that widen or appear in a later batch; keys repeat within a batch
now and then, and the names need quoting."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from interlink.store import create_engine
from interlink.sync import _pg_copy
from interlink.sync._table_writer import COPY_MIN_ROWS, TableWriter, WriteMode

pytestmark = pytest.mark.postgres

TEXTS = [
    "",
    "\\N",
    "\\",
    "end\\",
    "\\.",
    "a\tb",
    "line\nbreak",
    "cr\rlf\r\n",
    'q"uote',
    "'",
    "NULL",
    "Zoë ✓",
    "𝄞 non-BMP 😀",
    "x" * 20000,
    "nul\x00inside",
]
INTS = [0, -1, 7, 2**31, 2**53, 2**53 + 1, 2**63 - 1, -(2**63), 2**64, -(2**70)]
FLOATS = [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 0.1, 2.5]
JSONS: list[Any] = [
    {},
    [],
    {"q": 'a"b\\c', "t": "\t\n", "n": None},
    {"nested": {"l": [1, 2.5, None, "ü", True]}, "empty": ""},
    ["\\N", None, -0.0, 2**62],
    {"nul": "\x00"},
]
OTHERS: list[Any] = [True, False, datetime(2026, 3, 1, 10, 0, tzinfo=UTC), Decimal("1.10")]
POOLS: list[list[Any]] = [INTS, FLOATS, TEXTS, JSONS, [True, False], INTS + FLOATS, OTHERS]
FIELDS = ["v", "a b", "Order", "select", 'we"ird', "pct%", "UPPER", "n"]
SIZES = [1, 7, COPY_MIN_ROWS - 1, COPY_MIN_ROWS, COPY_MIN_ROWS + 1, 90]


def _batches(rng: random.Random, keyed: bool) -> list[list[dict[str, Any]]]:
    """Three to four batches; a field's values come from one pool per batch, so columns
    widen from one batch to the next, and fields join late."""
    batches = []
    for number in range(rng.randint(3, 4)):
        size = rng.choice(SIZES)
        fields = rng.sample(FIELDS, rng.randint(1, 3 + number))
        pools = {field: rng.choice(POOLS) for field in fields}
        if rng.random() < 0.2:  # a key twice in the batch, now and then
            keys: list[Any] = [rng.randrange(150) for _ in range(size)]
        else:
            keys = rng.sample(range(150), size)
        if rng.random() < 0.05:
            keys = [str(k) if k % 3 == 0 else k for k in keys]
        batch = []
        for key in keys:
            record: dict[str, Any] = {"id": key} if keyed else {}
            for field in fields:
                roll = rng.random()
                if roll < 0.1:
                    continue  # a missing field
                record[field] = None if roll < 0.2 else rng.choice(pools[field])
            batch.append(record)
        batches.append(batch)
    return batches


def _write(
    engine: sa.Engine, writer: TableWriter, batch: list[dict[str, Any]]
) -> tuple[Any, ...] | str:
    """The counts and failures of one batch (the table's name left out), or the error."""
    try:
        with engine.begin() as conn:
            writer.prepare(conn, batch)
            counts = writer.write(conn, batch)
    except sa.exc.SQLAlchemyError as exc:
        writer.columns = None
        return type(getattr(exc, "orig", exc)).__name__
    failures = [
        (batch.index(record), reason.replace(writer.name, "T"))
        for record, reason in counts.failures
    ]
    return (counts.created, counts.updated, counts.unchanged, failures)


def _contents(url: str, table: str) -> list[tuple[Any, ...]]:
    """The table's columns with their types, then its rows as text, sorted."""
    ident = psycopg.sql.Identifier
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        if not columns:
            return []
        names = psycopg.sql.SQL(", ").join(
            psycopg.sql.SQL("{}::text").format(ident(c)) for c, _ in columns
        )
        query = psycopg.sql.SQL("SELECT {} FROM {}").format(names, ident(table))
        rows = conn.execute(query).fetchall()
    return [tuple(columns), *sorted(rows, key=repr)]


@pytest.fixture(scope="module")
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def copied() -> Iterator[list[str]]:
    """Every table a COPY went into, over all examples (a spy on `copy_rows`)."""
    seen: list[str] = []
    real = _pg_copy.copy_rows

    def spy(conn: Any, table: str, *args: Any) -> int:
        seen.append(table)
        return real(conn, table, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_pg_copy, "copy_rows", spy)
        yield seen
    assert any(t.startswith(_pg_copy.STAGE_PREFIX) for t in seen), "no merge went by stage"
    assert any(not t.startswith(_pg_copy.STAGE_PREFIX) for t in seen), "none went straight in"


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), keyed=st.booleans())
def test_copy_writes_what_the_row_by_row_path_writes(
    engine: sa.Engine, postgres_url: str, copied: list[str], seed: int, keyed: bool
) -> None:
    rng = random.Random(seed)
    stem = f"Diff %{uuid.uuid4().hex[:8]}"
    key = ["id"] if keyed else []
    mode: WriteMode = "merge" if keyed else "append"
    fast = TableWriter(engine, f"{stem} copy", primary_key=key, mode=mode)
    slow = TableWriter(engine, f"{stem} rows", primary_key=key, mode=mode)
    slow.copy_min_rows = 10**9
    before = len(copied)
    try:
        for batch in _batches(rng, keyed):
            assert _write(engine, fast, batch) == _write(engine, slow, batch)
            assert _contents(postgres_url, fast.name) == _contents(postgres_url, slow.name)
        assert all(not name.endswith(" rows") for name in copied[before:])
    finally:
        with engine.begin() as conn:
            for writer in (fast, slow):
                quoted = engine.dialect.identifier_preparer.quote(writer.name)
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quoted}")
