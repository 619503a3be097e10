"""Column kinds: which kind a value needs, how kinds widen (the path is drawn in
`_table_writer`'s docstring), and how a value is stored as text. Pure functions:
`TableWriter` and `BatchCheck` decide with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson

__all__ = [
    "EXACT_INT",
    "ColumnKind",
    "as_text",
    "has_nul",
    "infer_kind",
    "kind_needed",
    "sqlite_text",
]

ColumnKind = Literal["boolean", "integer", "float", "text", "json"]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # BIGINT, and SQLite's INTEGER
EXACT_INT = 2**53  # every integer up to this magnitude is exactly a double

_KIND_OF: dict[type, ColumnKind] = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "text",
    dict: "json",
    list: "json",
}
# The value types a column of each kind stores as they are (None fits every column).
_FITS: dict[str, frozenset[type]] = {
    "boolean": frozenset({bool}),
    "integer": frozenset({int}),
    "float": frozenset({float, int}),
    "text": frozenset({str}),
    "json": frozenset({dict, list}),
}


def infer_kind(value: Any) -> ColumnKind | None:
    """The column kind of one value; None for None (it says nothing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer" if _INT_MIN <= value <= _INT_MAX else "text"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dict | list):
        return "json"
    return "text"


def _widen(a: ColumnKind | None, b: ColumnKind | None) -> ColumnKind | None:
    if a is None or a == b:
        return b
    if b is None:
        return a
    if {a, b} == {"integer", "float"}:
        return "float"
    return "text"


def _number_text(value: float) -> str:
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def as_text(value: Any) -> str:
    """How a value that is not a string is stored in a text column: `true`/`false`, the
    number's shortest digits (10.5, 2, 1e+20), objects and arrays as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=str).decode()
    return str(value)


def sqlite_text(value: Any, kind: str) -> Any:
    """`as_text` for a value stored in SQLite under the column kind `kind` (a rebuild)."""
    if value is None:
        return None
    if kind == "boolean" and isinstance(value, int):
        return "true" if value else "false"
    return as_text(value)


def _fits(current: ColumnKind, values: Sequence[Any], types: set[type]) -> bool:
    """Whether values of `types` (None left out) all fit a `current` column as they are."""
    if not types <= _FITS[current]:
        return False
    if current == "integer":
        try:
            low, high = min(values), max(values)
        except TypeError:  # None among them
            present = list(filter(None, values))
            low, high = (min(present), max(present)) if present else (0, 0)
        return bool(_INT_MIN <= low and high <= _INT_MAX)
    if current == "float" and int in types:
        return _within(values, EXACT_INT) or _ints_within(values, -EXACT_INT, EXACT_INT)
    return True


def _within(values: Sequence[Any], bound: int) -> bool:
    """A quick C-level test: every number's magnitude is at most `bound`."""
    return bool(max(map(abs, filter(None, values)), default=0) <= bound)


def _ints_within(values: Sequence[Any], low: int, high: int) -> bool:
    ints = [v for v in values if type(v) is int]
    return not ints or (low <= min(ints) and max(ints) <= high)


def kind_needed(
    current: ColumnKind | None, values: Sequence[Any], types: set[type]
) -> ColumnKind | None:
    """The narrowest kind that holds a `current` column's values and `values` exactly."""
    if not types:
        return current
    if current is not None and _fits(current, values, types):
        return current
    kind = current
    for value_type in types:
        kind = _widen(kind, _KIND_OF.get(value_type, "text"))
    if kind in ("integer", "float") and not _fits(kind, values, types):
        return "text"  # an integer beyond what the column holds exactly
    return kind


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(has_nul, value))
    return False
