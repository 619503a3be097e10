"""How a value places and counts a row: the Python rules, and SQLite's and PostgreSQL's
expressions agreeing with them value for value (including values that are not times)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.metrics import group_text, number, wall_seconds
from interlink.metrics._sql_expr import number_value, time_kind, time_parts, value_kind
from interlink.metrics._values import days_from_civil, epoch_seconds
from interlink.store import create_engine

from .conftest import create_table


def seconds(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-29", (seconds("2026-03-29T00:00:00"), None)),
        ("2026-03-29T10:00", (seconds("2026-03-29T10:00:00"), None)),
        ("2026-03-29 10:00:05", (seconds("2026-03-29T10:00:05"), None)),
        ("2026-03-29T10:00:05Z", (seconds("2026-03-29T10:00:05"), 0)),
        ("2026-03-29T10:00:05.999999z", (seconds("2026-03-29T10:00:05"), 0)),
        ("2026-03-29T10:00:05+02:00", (seconds("2026-03-29T10:00:05"), 7200)),
        ("2026-03-29T10:00:05.5-09:30", (seconds("2026-03-29T10:00:05"), -34200)),
        ("2026-03-29T10:00+05:45", (seconds("2026-03-29T10:00:00"), 20700)),
        ("2026-03-29T24:00:00Z", (seconds("2026-03-30T00:00:00"), 0)),
        ("2026-02-30", (seconds("2026-03-02T00:00:00"), None)),
    ],
)
def test_iso_text(text, expected):
    assert wall_seconds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-03-29T10",
        "2026-3-29",
        "2026-13-01",
        "2026-00-10",
        "2026-01-32",
        "2026-03-29T25:00",
        "2026-03-29T10:60",
        "2026-03-29T10:00:60",
        "2026-03-29T10:00:5",
        "2026-03-29t10:00",
        "2026-03-29 ",
        "1774778400",
        "yesterday",
    ],
)
def test_text_that_is_no_time(text):
    assert wall_seconds(text) is None


def test_days_from_civil_is_the_calendar():
    for year in (1971, 2000, 2024, 2026, 2100, 2999):
        for month in range(1, 13):
            for day in (1, 15, 28):
                expected = (datetime(year, month, day) - datetime(1970, 1, 1)).days
                assert days_from_civil(year, month, day) == expected


def test_epoch_seconds_and_milliseconds():
    assert epoch_seconds(1774778400) == 1774778400
    assert epoch_seconds(1774778400.9) == 1774778400
    assert epoch_seconds(1774778400123) == 1774778400
    assert epoch_seconds(1774778400999.5) == 1774778400
    assert epoch_seconds(99_999_999_999) == 99_999_999_999  # below 1e11: seconds


def test_numbers_and_groups():
    assert [number(v) for v in (3, 2.5, "12.50", "-3", ".5", "5.", "+1")] == [
        3,
        2.5,
        12.5,
        -3.0,
        0.5,
        5.0,
        1.0,
    ]
    for not_a_number in (True, None, "1e3", " 1", "1.2.3", "--1", "", ".", "abc", {}, float("nan")):
        assert number(not_a_number) is None
    assert [group_text(v) for v in (None, "eur", True, 3, 2.0, 2.5, {"b": 1, "a": 2})] == [
        None,
        "eur",
        "true",
        "3",
        "2",
        "2.5",
        '{"a":2,"b":1}',
    ]


# -- the SQL expressions against the Python rules ---------------------------------------

_DATES = ["2026-03-29", "2026-02-30", "2026-13-01", "1999-12-31", "2026-3-29", "2026-00-01"]
_SEPARATORS = ["T", " ", "t", "TT", "", "\t"]
_CLOCKS = ["10:00", "00:00", "24:00", "23:59", "25:00", "10:60", "10", "1:00"]
_SECONDS = ["", ":05", ":59", ":60", ":5", ":ab"]
_FRACTIONS = ["", ".123", ".9999", ",5", "."]
_ZONES = ["", "Z", "z", "+02:00", "-09:30", "+0200", " +02:00", "+14:00", "-", "x", " "]


def texts() -> list[str]:
    """Well-formed times, and near misses of every kind: a date, a separator, a clock,
    seconds, a fraction and a zone, each drawn from good and bad pieces, sometimes cut."""
    rnd = random.Random(20261129)
    made = {"", "yesterday", "1774778400", "2026-03-29", "2026-03-29 "}
    while len(made) < 4000:
        parts = [
            rnd.choice(_DATES),
            rnd.choice(_SEPARATORS),
            rnd.choice(_CLOCKS),
            rnd.choice(_SECONDS),
            rnd.choice(_FRACTIONS),
            rnd.choice(_ZONES),
        ]
        text = "".join(parts[: rnd.choice([1, 3, 4, 5, 6, 6, 6])])
        if rnd.random() < 0.1:
            text = text[: rnd.randrange(len(text) + 1)]
        made.add(text)
    return sorted(made)


def _expressions_agree(url: str) -> None:
    values = texts()
    rows: list[dict[str, Any]] = [{"id": i, "t": text} for i, text in enumerate(values)]
    numbers = ["1", "-2.5", ".5", "5.", "+7", "1e3", "1.2.3", "--1", "", ".", "1-", " 1", "12a"]
    rows += [{"id": len(rows) + i, "t": text} for i, text in enumerate(numbers)]
    create_table(url, "times", {"id": sa.Integer(), "t": sa.Text()}, rows)
    engine = create_engine(url)
    try:
        dialect = engine.dialect.name
        table = sa.Table("times", sa.MetaData(), autoload_with=engine)
        column = table.c.t
        kind = time_kind(column, dialect)
        assert kind == "text"
        wall, offset = time_parts(column, kind, dialect)
        numeric = value_kind(column)
        assert numeric == "text"
        as_number = number_value(column, numeric, dialect)
        query = sa.select(table.c.id, column, wall, offset, as_number).order_by(table.c.id)
        with engine.connect() as conn:
            found = conn.execute(query).all()
    finally:
        engine.dispose()
    mismatches = []
    times = 0
    for _, text, w, z, n in found:
        parsed = wall_seconds(text)
        got = None if w is None else (w, z)
        if got != parsed:
            mismatches.append((text, got, parsed))
        if n != number(text):
            mismatches.append((text, n, number(text)))
        times += parsed is not None
    assert mismatches == []
    assert 150 < times < len(found) - 1000  # many were times, and many were not


def test_sqlite_reads_text_as_python_does(sqlite_url):
    _expressions_agree(sqlite_url)


def test_postgresql_reads_text_as_python_does(pg_url):
    _expressions_agree(pg_url)
