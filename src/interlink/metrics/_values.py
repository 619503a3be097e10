"""What a row's values mean to a metric: its time, its number, its group. Pure functions.

These are the reference rules; the SQL path (`_sql_expr`) writes the same rules as SQL for
SQLite and PostgreSQL, step for step, so that a table and a live read of the same records
give the same result.

Times (`time_field`), to whole seconds:

- a number is epoch seconds, or epoch milliseconds when it is 1e11 or more (1e11 seconds
  is the year 5138; 1e11 milliseconds is March 1973); fractions of a second are dropped;
- text is read by position: `YYYY-MM-DD` alone, or `YYYY-MM-DD` then `T` or a space, then
  `HH:MM`, then optionally `:SS` and anything up to the end (a fraction is dropped), which
  may be `Z` or an offset `+HH:MM` / `-HH:MM`. A month outside 1-12, a day outside 1-31,
  an hour past 24 or a minute or second past 59 is not a time (SQLite's limits); a day
  past the month's end rolls over (`2026-02-30` is March 2nd, as SQLite reads it);
- a time with `Z` or an offset is an instant; a time without one, and a date alone, is a
  wall-clock reading in the metric's own time zone (`2026-03-29` is that local day);
- anything else (other text, true/false, objects) places the row nowhere: it is skipped.

Numbers (`field` of sum, avg, min, max): numbers, and text that is a plain decimal number
(`"12.50"`, `"-3"`, `".5"`; no exponent, no spaces), read as a float. Anything else
(true/false, other text, null) is skipped, as SQL's aggregates skip NULL.

Groups (`group_by`): a value's text (true/false, a number's shortest digits, an object or
array as its JSON); null or missing is the null group.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

__all__ = [
    "DECIMAL_PATTERN",
    "MILLISECONDS_FROM",
    "days_from_civil",
    "distinct_key",
    "epoch_seconds",
    "group_text",
    "number",
    "wall_seconds",
]

MILLISECONDS_FROM = 100_000_000_000
"""Epoch values this large or larger are milliseconds."""

DECIMAL_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$"
"""Text that is read as a number (a POSIX regular expression PostgreSQL runs too)."""
_DECIMAL = re.compile(DECIMAL_PATTERN)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MINUTE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")
_TWO_DIGITS = re.compile(r"[0-9]{2}")
_OFFSET = re.compile(r"[+-][0-9]{2}:[0-9]{2}")


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), in
    integer steps SQL repeats exactly; month and day are not range-checked."""
    y = year - (1 if month <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _days(text: str) -> int | None:
    month, day = int(text[5:7]), int(text[8:10])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None  # SQLite's date functions refuse these; the rest they roll over
    return days_from_civil(int(text[0:4]), month, day)


def wall_seconds(text: str) -> tuple[int, int | None] | None:
    """`(seconds, offset)` of an ISO-8601 text: the seconds its digits say as if on a UTC
    clock, and its UTC offset in seconds (None when it has none); None for other text."""
    size = len(text)
    if size == 10 and _DATE.fullmatch(text):
        days = _days(text)
        return None if days is None else (days * 86_400, None)
    if size < 16 or not _MINUTE.match(text):
        return None
    days = _days(text)
    hour, minute, second = int(text[11:13]), int(text[14:16]), 0
    if size > 16 and text[16] == ":":
        if not _TWO_DIGITS.fullmatch(text[17:19]):
            return None
        second = int(text[17:19])
    if days is None or hour > 24 or minute > 59 or second > 59:
        return None  # SQLite's limits; 24:00 is the next midnight
    seconds = days * 86_400 + hour * 3600 + minute * 60 + second
    offset: int | None = None
    if text[-1] in "Zz":
        offset = 0
    elif _OFFSET.fullmatch(text[-6:]):
        sign = -1 if text[-6] == "-" else 1
        offset = sign * (int(text[-5:-3]) * 3600 + int(text[-2:]) * 60)
    return seconds, offset


def epoch_seconds(value: int | float) -> int:
    """Whole epoch seconds of an epoch number in seconds or milliseconds (truncated, as
    SQL's integer division and CAST do)."""
    if isinstance(value, int):
        if value >= MILLISECONDS_FROM:
            return value // 1000 if value >= 0 else -(-value // 1000)
        return value
    if value >= MILLISECONDS_FROM:
        return int(value / 1000)
    return int(value)


def number(value: Any) -> int | float | None:
    """A value as a number to aggregate, or None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return float(value)
    return None


def group_text(value: Any) -> str | None:
    """The group a value stands for: its text, or None (the null group)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


def distinct_key(value: Any) -> Any:
    """What count_distinct compares: the value itself, or an object's or array's JSON."""
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value
