"""The SQL expressions of a metric query, for SQLite and PostgreSQL, in SQLAlchemy Core.

They write `_values`' rules in SQL, step for step, so that a table and a live read of the
same records agree to the second and to the last row:

- `time_parts`: a time column as `(w, z)`: whole seconds as written, and the UTC offset
  (0 for epoch numbers and `timestamptz`; NULL for naive text, `timestamp` and `date`,
  which are wall clock readings in the metric's zone). Text is read by position
  (`substr`), guarded by `GLOB` on SQLite and a regular expression on PostgreSQL, so no
  row can make the query fail; SQLite's `unixepoch` reads the date part, PostgreSQL
  repeats `days_from_civil`.
- `local_seconds`: `w` when `z` is NULL, else the instant `w - z` plus the zone's offset
  at that instant, a `CASE` over the few offset changes of the period (`_zone`).
- `number_value`: a column as a number to aggregate; text only when it is a plain
  decimal number.

Column names only ever reach SQL as quoted identifiers (`sa.Column` objects from
reflection); every constant is a bound parameter or a literal SQLAlchemy renders.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa

from ._values import DECIMAL_PATTERN, MILLISECONDS_FROM
from ._zone import OffsetSpans

__all__ = [
    "TimeKind",
    "pg_digits",
    "pg_number",
    "pg_wall",
    "text_offset",
    "local_seconds",
    "number_value",
    "time_kind",
    "time_parts",
    "value_kind",
]

TimeKind = Literal["epoch", "text", "instant", "naive"]
ValueKind = Literal["number", "text"]

_OFFSET_RE = "^[+-][0-9]{2}:[0-9]{2}$"


def time_kind(column: sa.Column[Any], dialect: str) -> TimeKind | None:
    """How a time column's values are read; None for a type that holds no times."""
    kind = column.type
    if isinstance(kind, sa.Boolean | sa.JSON):
        return None
    if isinstance(kind, sa.Integer | sa.Numeric | sa.Float):
        return "epoch"
    if isinstance(kind, sa.DateTime):
        if dialect == "sqlite":
            return "text"  # SQLAlchemy keeps SQLite datetimes as ISO text, without zone
        return "instant" if kind.timezone else "naive"
    if isinstance(kind, sa.Date):
        return "text" if dialect == "sqlite" else "naive"
    if isinstance(kind, sa.String | sa.types.NullType):
        return "text"
    return None


def value_kind(column: sa.Column[Any]) -> ValueKind | None:
    """How a column's values are summed: as numbers, as text holding numbers, or not."""
    kind = column.type
    if isinstance(kind, sa.Boolean | sa.JSON):
        return None
    if isinstance(kind, sa.Integer | sa.Numeric | sa.Float):
        return "number"
    if isinstance(kind, sa.String | sa.types.NullType):
        return "text"
    return None


def _int(expression: Any) -> Any:
    return sa.cast(expression, sa.BigInteger)


def _glob(expression: Any, pattern: str) -> Any:
    return expression.op("GLOB", is_comparison=True)(sa.literal(pattern, sa.Text))


def _matches(expression: Any, pattern: str) -> Any:
    return expression.op("~", is_comparison=True)(sa.literal(pattern, sa.Text))


def _days_from_civil(year: Any, month: Any, day: Any) -> Any:
    """`_values.days_from_civil` in SQL (integer division truncates; every operand is
    non-negative for the years a metric covers, where that is floor division)."""
    y = year - sa.case((month <= 2, 1), else_=0)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + sa.case((month > 2, -3), else_=9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_SECONDS_LIKE = ("____-__-__T__:__:__%", "____-__-__ __:__:__%")
_MINUTES_LIKE = ("____-__-__T__:__%", "____-__-__ __:__%")


def pg_digits(text: Any) -> Any:
    """A text time's digits on PostgreSQL, YYYYMMDDhhmmss as text, for the shapes of
    _values.wall_seconds (a date alone; or a date, T or a space, HH:MM, and after a colon
    there two digits of seconds); NULL for other text. Its separators are checked here
    with LIKE (a regular expression per row costs PostgreSQL several times more), its
    digits by `pg_number`."""

    def cut(start: int, length: int) -> Any:
        return sa.func.substr(text, start, length)

    def like(*patterns: str) -> Any:
        return sa.or_(*(text.like(pattern) for pattern in patterns))

    date = cut(1, 4).concat(cut(6, 2)).concat(cut(9, 2))
    clock = date.concat(cut(12, 2)).concat(cut(15, 2))
    return sa.case(
        (like(*_SECONDS_LIKE), clock.concat(cut(18, 2))),
        (sa.and_(like(*_MINUTES_LIKE), cut(17, 1) != ":"), clock.concat("00")),
        (sa.and_(sa.func.length(text) == 10, text.like("____-__-__")), date.concat("000000")),
        else_=None,
    )


def pg_number(digits: Any) -> Any:
    """`pg_digits` as a number, NULL unless all 14 characters are digits."""
    return sa.case((sa.func.ltrim(digits, "0123456789") == "", _int(digits)), else_=None)


def pg_wall(number: Any) -> Any:
    """`w` from `pg_number`, with _values.wall_seconds' checks."""
    year, month = number // 10_000_000_000, number // 100_000_000 % 100
    day, hour = number // 1_000_000 % 100, number // 10_000 % 100
    minute, second = number // 100 % 100, number % 100
    days = _days_from_civil(year, month, day)
    return sa.case(
        (
            sa.and_(
                month.between(1, 12), day.between(1, 31), hour <= 24, minute <= 59, second <= 59
            ),
            days * 86_400 + hour * 3600 + minute * 60 + second,
        ),
        else_=None,
    )


def _sqlite_wall(column: Any) -> Any:
    def part(start: int, length: int) -> Any:
        return sa.func.substr(column, start, length)

    # unixepoch() reads the date and time as _values.wall_seconds does (NULL for a month
    # outside 1-12, a day outside 1-31, an hour past 24, a minute or second past 59); the
    # text is cut before any fraction or offset, which text_offset reads. Three characters
    # stand for the shape's GLOB (which costs more than the parse): with a date's dash,
    # one T or space at 11 and a colon at 14, unixepoch() of those 16 or 19 characters is
    # NULL unless every other position holds a digit, as _values' pattern asks (it skips a
    # run of spaces and T's, which the colon at 14 rules out); a 10-character date likewise.
    dash = part(5, 1) == "-"
    return sa.case(
        (
            sa.and_(dash, part(11, 1).in_(["T", " "]), part(14, 1) == ":"),
            sa.case(
                (part(17, 1) == ":", sa.func.unixepoch(part(1, 19))),
                else_=sa.func.unixepoch(part(1, 16)),
            ),
        ),
        (sa.and_(dash, sa.func.length(column) == 10), sa.func.unixepoch(column)),
        else_=None,
    )


def text_offset(column: Any, dialect: str) -> Any:
    """`z` of a text time: 0 for a `Z`, the seconds of a `+HH:MM` / `-HH:MM` ending, NULL
    for none (a wall-clock time; only rows `w` says are times count)."""
    if dialect == "sqlite":
        tail = sa.func.substr(column, -6)
        tail_sign, last = sa.func.substr(column, -6, 1), sa.func.substr(column, -1)
        hours = _int(sa.func.substr(column, -5, 2))
        minutes = _int(sa.func.substr(column, -2, 2))
        has_offset = _glob(tail, "[+-][0-9][0-9]:[0-9][0-9]")
    else:
        tail, last = sa.func.right(column, 6), sa.func.right(column, 1)
        tail_sign = sa.func.left(tail, 1)
        hours = _int(sa.func.substr(tail, 2, 2))
        minutes = _int(sa.func.right(column, 2))
        has_offset = _matches(tail, _OFFSET_RE)
    sign = sa.case((tail_sign == "-", -1), else_=1)
    return sa.case(
        (last.in_(["Z", "z"]), 0),
        (has_offset, sign * (hours * 3600 + minutes * 60)),
        else_=None,
    )


def _epoch(column: Any, dialect: str) -> Any:
    big = column >= MILLISECONDS_FROM
    if dialect == "sqlite":
        # An INTEGER column of SQLite may still hold a REAL: CAST truncates both, as
        # _values.epoch_seconds does (integer division of an integer truncates too).
        if isinstance(column.type, sa.Integer):
            return _int(sa.case((big, column // 1000), else_=column))
        return _int(sa.case((big, column / 1000.0), else_=column))
    if isinstance(column.type, sa.Integer):
        return sa.case((big, column // 1000), else_=column)
    return _int(sa.func.trunc(sa.case((big, column / 1000.0), else_=column)))


def time_parts(column: Any, kind: TimeKind, dialect: str) -> tuple[Any, Any]:
    """`(w, z)` of a time column (see the module docstring)."""
    if kind == "epoch":
        return _epoch(column, dialect), sa.literal(0, sa.BigInteger)
    if kind == "text":
        if dialect == "sqlite":
            return _sqlite_wall(column), text_offset(column, dialect)
        return pg_wall(pg_number(pg_digits(column))), text_offset(column, dialect)
    seconds = _int(sa.func.floor(sa.extract("epoch", column)))
    if kind == "instant":
        return seconds, sa.literal(0, sa.BigInteger)
    return seconds, sa.null()


def _offset_case(instant: Any, spans: OffsetSpans) -> Any:
    if not spans.changes:
        return sa.literal(spans.offsets[0], sa.BigInteger)
    whens = [
        (instant < sa.literal(change, sa.BigInteger), sa.literal(offset, sa.BigInteger))
        for change, offset in zip(spans.changes, spans.offsets, strict=False)
    ]
    return sa.case(*whens, else_=sa.literal(spans.offsets[-1], sa.BigInteger))


def local_seconds(wall: Any, offset: Any, kind: TimeKind, spans: OffsetSpans) -> Any:
    """Local seconds of a row from its `(w, z)` columns."""
    if kind == "naive":
        return wall
    if kind in ("epoch", "instant"):
        return wall + _offset_case(wall, spans)
    instant = wall - offset
    return sa.case((offset.is_(None), wall), else_=instant + _offset_case(instant, spans))


def number_value(column: Any, kind: ValueKind, dialect: str) -> Any:
    """A column as a number: itself, or text that is a plain decimal number as a float."""
    if kind == "number":
        return column
    as_float = sa.cast(column, sa.Float(precision=53) if dialect != "sqlite" else sa.REAL)
    if dialect == "sqlite":
        # DECIMAL_PATTERN in GLOBs: only [0-9.+-], a digit, at most one dot, a sign first.
        looks = sa.and_(
            sa.not_(_glob(column, "*[^0-9.+-]*")),
            _glob(column, "*[0-9]*"),
            sa.not_(_glob(column, "*.*.*")),
            sa.not_(_glob(column, "?*[+-]*")),
        )
        return sa.case(
            (sa.func.typeof(column).in_(["integer", "real"]), column),
            (looks, as_float),
            else_=None,
        )
    return sa.case((_matches(column, DECIMAL_PATTERN), as_float), else_=None)
