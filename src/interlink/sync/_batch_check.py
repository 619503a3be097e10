"""One batch's values checked against the columns they go to, column by column."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import compress
from typing import Any

import orjson

from ._column_kinds import ColumnKind, as_text, has_nul

__all__ = ["BatchCheck"]

_NONE = type(None)
_INF = float("inf")


class BatchCheck:
    """One batch's rows, column by column: the records that cannot be stored, the kinds
    the columns need, and the values converted for the kinds the columns have."""

    def __init__(self, rows: list[tuple[Any, ...]], width: int) -> None:
        self.rows = rows
        self.width = width
        self.index = list(range(len(rows)))  # each row's place in the batch
        self.failed: dict[int, str] = {}
        self._columns()

    def _columns(self) -> None:
        self.columns: list[Sequence[Any]] = (
            list(zip(*self.rows, strict=True)) if self.rows else [()] * self.width
        )
        self.types = []
        self.nulls: list[bool] = []  # whether the column holds a None
        for values in self.columns:
            types = set(map(type, values))
            self.nulls.append(_NONE in types)
            types.discard(_NONE)
            self.types.append(types)

    def fail(self, at: Sequence[int], reason: str) -> None:
        for row in at:
            self.failed.setdefault(self.index[row], reason)

    def drop_failed(self) -> None:
        if not self.failed:
            return
        keep = [i not in self.failed for i in self.index]
        if all(keep):
            return
        self.rows = list(compress(self.rows, keep))
        self.index = list(compress(self.index, keep))
        self._columns()

    def unstorable(
        self, dialect: str, kinds: Sequence[ColumnKind | None], keys: set[int], names: list[str]
    ) -> None:
        """Fail the rows with a value no column could take."""
        for at, (values, types) in enumerate(zip(self.columns, self.types, strict=True)):
            if at in keys and types & {dict, list}:
                rows = [i for i, v in enumerate(values) if type(v) in (dict, list)]
                self.fail(
                    rows, f"the key {names[at]} is an object or array; a key is text or a number"
                )
            if str in types:
                texts = values if types == {str} else [v if type(v) is str else "" for v in values]
                joined = "".join(filter(None, texts))
                if not joined.isascii() and not _encodes(joined):
                    rows = [i for i, v in enumerate(texts) if v and not _encodes(v)]
                    self.fail(
                        rows,
                        f"column {names[at]}: the text is not valid Unicode (a lone surrogate)",
                    )
                if dialect == "postgresql" and "\x00" in joined:
                    rows = [i for i, v in enumerate(texts) if v and "\x00" in v]
                    self.fail(
                        rows,
                        f"column {names[at]}: PostgreSQL cannot store the NUL character "
                        "(\\x00) in text",
                    )
            if dialect == "sqlite" and float in types and kinds[at] != "text":
                # Summing the floats is one C-level pass; NaN (or an overflow) shows.
                floats = (
                    values
                    if types == {float}
                    else [0.0 if type(v) is not float else v for v in values]
                )
                total = sum(filter(None, floats))
                if total != total or total in (_INF, -_INF):
                    rows = [i for i, v in enumerate(floats) if v != v]
                    self.fail(
                        rows,
                        f"column {names[at]}: SQLite cannot store NaN (it would read back as NULL)",
                    )
        self.drop_failed()

    def convert(self, dialect: str, kinds: Sequence[ColumnKind], names: list[str]) -> None:
        """Put the values in the form their columns store: text for a text column, JSON
        text for a JSON column."""
        changed = False
        for at, (values, types, kind) in enumerate(
            zip(self.columns, self.types, kinds, strict=True)
        ):
            if kind == "text" and not types <= {str}:
                try:
                    self.columns[at] = [
                        v if v is None or type(v) is str else as_text(v) for v in values
                    ]
                except TypeError:  # orjson's refusal: a lone surrogate, a huge integer
                    self.columns[at] = self._each(values, _as_text, names[at])
                changed = True
            elif kind == "json" and types:
                try:
                    dumped = _dump_all(values, self.nulls[at])
                except TypeError:  # a value orjson has no form for: str() it, or fail it
                    dumped = self._each(values, _as_json, names[at])
                self.columns[at] = dumped
                changed = True
                if dialect == "postgresql" and "\\u0000" in "".join(filter(None, dumped)):
                    rows = [i for i, v in enumerate(values) if has_nul(v)]
                    self.fail(
                        rows,
                        f"column {names[at]}: PostgreSQL cannot store the NUL character "
                        "(\\u0000) in JSON",
                    )
        if changed:
            self.rows = list(zip(*self.columns, strict=True)) if self.rows else []
        self.drop_failed()

    def _each(
        self, values: Sequence[Any], convert: Callable[[Any], str | None], name: str
    ) -> list[str | None]:
        """`convert` value by value; a value it refuses fails its row, with the reason."""
        converted: list[str | None] = []
        for row, value in enumerate(values):
            try:
                converted.append(convert(value))
            except TypeError as exc:
                self.fail([row], f"column {name}: {exc}")
                converted.append(None)
        return converted


def _encodes(text: str) -> bool:
    """Whether `text` has a UTF-8 form (a lone surrogate, as `json.loads` makes of
    "\\ud800", has none: no driver can send it)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _as_text(value: Any) -> str | None:
    return value if value is None or type(value) is str else as_text(value)


_decode = bytes.decode


def _dump_all(values: Sequence[Any], nulls: bool) -> list[str | None]:
    """Every value as JSON text (None stays None); TypeError when orjson cannot write one
    of them as it is. Without None among them, one C-level pass (about 20% faster)."""
    dumps = orjson.dumps
    if not nulls:
        return list(map(_decode, map(dumps, values)))
    return [None if v is None else dumps(v).decode() for v in values]


def _as_json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()
