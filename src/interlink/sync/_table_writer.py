"""Write records into a table of their own: created from the records, grown and widened as
they change.

Top-level scalars become typed columns (boolean, BIGINT, DOUBLE, TEXT), nested objects and
arrays JSON columns (JSONB on PostgreSQL). A field that appears later adds a column; a value
its column cannot hold exactly widens the column, along one path:

```
boolean ─────────────────────┐
integer ──> float (DOUBLE) ──> text
json (objects and arrays) ───┘
```

An integer beyond 64 bits, or beyond the 2**53 a double holds exactly when the column is
(or becomes) float, makes the column text, so every digit is kept. In a text column a value
that is not a string is stored as its text: `true`/`false`, the number's shortest digits,
an object or array as its JSON. PostgreSQL widens with `ALTER COLUMN ... TYPE ... USING`;
SQLite, which cannot change a column's type, rebuilds the table in the same transaction
(indexes, triggers and views are kept). `prepare` returns every change as a `SchemaChange`.

Column names are what the database can hold: on PostgreSQL a field name over 63 bytes gets
its first bytes and a short hash of the whole name; on SQLite, where column names ignore
case, a field that differs from an existing column only in case (`Name` beside `name`) gets
`Name__<hash>`. Both are derived from the field name and the table's columns, so the same
field finds the same column in every later run.

A value no column can take fails its record alone, with the reason, in
`WriteCounts.failures`: an object or array in a key column, a NaN on SQLite (it would read
back as NULL), the NUL character in a string on PostgreSQL. The rest of the batch is
written.

Rows go in with the driver's `executemany` (SQLAlchemy builds the DDL and knows the
dialects; the rows themselves skip its per-row machinery, which would cost more than the
write). The checks above look at each column's set of value types once per batch; only a
column whose values do not all fit it gets per-value work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from interlink.errors import ConfigError

__all__ = ["ColumnKind", "SchemaChange", "TableWriter", "WriteCounts", "as_text", "infer_kind"]

ColumnKind = Literal["boolean", "integer", "float", "text", "json"]
WriteMode = Literal["append", "replace", "merge"]

_TYPES: dict[str, Any] = {
    "boolean": sa.Boolean(),
    "integer": sa.BigInteger(),
    "float": sa.Float(precision=53),
    "text": sa.Text(),
    # JSONB on PostgreSQL: plain JSON there has no equality, which the upsert compares.
    "json": sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
}

_NONE = type(None)
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # BIGINT, and SQLite's INTEGER
_EXACT = 2**53  # every integer up to this magnitude is exactly a double
_INF = float("inf")
_PG_NAME_BYTES = 63  # PostgreSQL cuts longer identifiers (NAMEDATALEN - 1)

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


@dataclass(frozen=True)
class SchemaChange:
    """One change `TableWriter.prepare` made to the table.

    `previous` is None for a column added, the kind it had for a column widened. `field` is
    the record field the column holds when the column's name had to differ from it (too
    long for PostgreSQL, or the case twin of another column on SQLite); None otherwise.
    """

    column: str
    kind: ColumnKind
    previous: ColumnKind | None = None
    field: str | None = None


@dataclass
class WriteCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    """Records not written, each with the reason (the rest of the batch was written)."""


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


def _sqlite_text(value: Any, kind: str) -> Any:
    """`as_text` for a value stored in SQLite under the column kind `kind` (a rebuild)."""
    if value is None:
        return None
    if kind == "boolean" and isinstance(value, int):
        return "true" if value else "false"
    return as_text(value)


def _digest(name: str, size: int) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:size]


def _fold(name: str) -> str:
    """A name as SQLite compares it: ASCII letters without case, everything else as is."""
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def column_name(field: str, dialect: str) -> str:
    """The column a field is stored in, before case clashes: the field's own name, or on
    PostgreSQL, for a name over 63 bytes, its first bytes, `_` and a hash of the whole."""
    if dialect != "postgresql" or len(field.encode()) <= _PG_NAME_BYTES:
        return field
    head = field.encode()[: _PG_NAME_BYTES - 11].decode("utf-8", "ignore")
    return f"{head}_{_digest(field, 10)}"


def _rows(records: Sequence[dict[str, Any]], fields: Sequence[str]) -> list[tuple[Any, ...]]:
    """The records' values of `fields` as tuples, a missing field None."""
    # Usually every record has every field: one C-level itemgetter pass takes them all.
    # A record without some field sends the batch field by field for such records.
    get_all: Callable[[dict[str, Any]], tuple[Any, ...]] = (
        itemgetter(*fields) if len(fields) > 1 else lambda record: (record[fields[0]],)
    )
    try:
        return list(map(get_all, records))
    except KeyError:
        pass
    rows: list[tuple[Any, ...]] = []
    for record in records:
        try:
            rows.append(get_all(record))
        except KeyError:
            rows.append(tuple(map(record.get, fields)))
    return rows


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
        return _within(values, _EXACT) or _ints_within(values, -_EXACT, _EXACT)
    return True


def _within(values: Sequence[Any], bound: int) -> bool:
    """A quick C-level test: every number's magnitude is at most `bound`."""
    return bool(max(map(abs, filter(None, values)), default=0) <= bound)


def _ints_within(values: Sequence[Any], low: int, high: int) -> bool:
    ints = [v for v in values if type(v) is int]
    return not ints or (low <= min(ints) and max(ints) <= high)


def _kind_needed(
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


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_has_nul, value))
    return False


class _Check:
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
        for values in self.columns:
            types = set(map(type, values))
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
            if dialect == "postgresql" and str in types:
                texts = values if types == {str} else [v if type(v) is str else "" for v in values]
                if "\x00" in "".join(filter(None, texts)):
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
        dumps = orjson.dumps
        for at, (values, types, kind) in enumerate(
            zip(self.columns, self.types, kinds, strict=True)
        ):
            if kind == "text" and not types <= {str}:
                self.columns[at] = [
                    v if v is None or type(v) is str else as_text(v) for v in values
                ]
                changed = True
            elif kind == "json" and types:
                dumped = [None if v is None else dumps(v, default=str).decode() for v in values]
                self.columns[at] = dumped
                changed = True
                if dialect == "postgresql" and "\\u0000" in "".join(filter(None, dumped)):
                    rows = [i for i, v in enumerate(values) if _has_nul(v)]
                    self.fail(
                        rows,
                        f"column {names[at]}: PostgreSQL cannot store the NUL character "
                        "(\\u0000) in JSON",
                    )
        if changed:
            self.rows = list(zip(*self.columns, strict=True)) if self.rows else []
        self.drop_failed()


@dataclass
class _Prepared:
    """A batch `prepare` checked: the rows to write and the records that failed."""

    records: Sequence[dict[str, Any]]
    rows: list[tuple[Any, ...]]
    failures: list[tuple[dict[str, Any], str]]
    keys: Sequence[Any] = ()
    """A single key's values, as written."""
    integer_keys: bool = False
    """Every one of them is an integer (or None)."""


class TableWriter:
    """Creates, grows, widens and fills one destination table; every call takes the
    caller's connection, so the rows commit together with whatever else the transaction
    holds.

    Call `prepare` and then `write` with the same records: `prepare` changes the table as
    they need and returns what it changed, `write` writes them (and prepares them itself
    when you did not). `merge` upserts by `primary_key` and leaves rows whose values did
    not change untouched (counted as unchanged); `append` inserts; `replace` empties the
    table on the first batch of a run (call `truncate`) and then behaves as merge (with a
    key) or append. Setting `columns` to None makes the next call read the table again.
    """

    def __init__(
        self,
        engine: sa.Engine,
        table: str,
        *,
        primary_key: Sequence[str] = (),
        mode: WriteMode = "merge",
    ) -> None:
        self.engine = engine
        self.name = table
        self.primary_key = list(primary_key)
        self.mode = mode
        if mode == "merge" and not self.primary_key:
            raise ValueError(f"table {table}: write mode merge needs a primary key")
        self.dialect = engine.dialect.name
        if self.dialect == "postgresql" and len(table.encode()) > _PG_NAME_BYTES:
            raise ConfigError(
                f"the table name {table!r} is {len(table.encode())} bytes long and "
                f"PostgreSQL keeps {_PG_NAME_BYTES}: choose a shorter one",
                key="destination",
            )
        self._quote = engine.dialect.identifier_preparer.quote
        self.columns: dict[str, ColumnKind] | None = None
        """The table's columns and their kinds, in table order (None: not read yet)."""
        self._statements: dict[tuple[str, ...], str] = {}
        self._fields: dict[str, str] = {}  # field -> its column, for every field seen
        self._sources: list[str] = []  # the field each column is filled from, in order
        self._folded: dict[str, str] = {}  # SQLite: a column's name without case -> it
        self._keys: list[str] = []  # the key's columns
        self._prepared: _Prepared | None = None

    # -- schema -----------------------------------------------------------------------------

    def _load(self, conn: sa.Connection) -> None:
        """Read the table's columns; which field each one holds is derived again."""
        columns: dict[str, ColumnKind] = {}
        inspector = sa.inspect(conn)
        if inspector.has_table(self.name):
            for column in inspector.get_columns(self.name):
                kind = column["type"]
                if isinstance(kind, sa.Boolean):
                    columns[column["name"]] = "boolean"
                elif isinstance(kind, sa.Integer):
                    columns[column["name"]] = "integer"
                elif isinstance(kind, sa.Float | sa.Numeric):
                    columns[column["name"]] = "float"
                elif isinstance(kind, sa.JSON):
                    columns[column["name"]] = "json"
                else:
                    columns[column["name"]] = "text"
        self.columns = columns
        self._fields = {name: name for name in columns}
        self._sources = list(columns)
        self._folded = {_fold(name): name for name in columns}
        self._statements.clear()
        self._prepared = None
        self._keys = []
        for key in self.primary_key:
            self._keys.append(self._column_for(key))

    def _column_for(self, field: str) -> str:
        """The column of `field`: the one it has, or the name a new one gets."""
        known = self._fields.get(field)
        if known is not None and self._sources[self._position(known)] == field:
            return known
        assert self.columns is not None
        name = column_name(field, self.dialect)
        if self.dialect == "sqlite" and name not in self.columns:
            owner = self._folded.get(_fold(name))
            if owner is not None and owner != name:
                # `Name` beside `name`: another field, so a column of its own.
                name = f"{field}__{_digest(field, 8)}"
        return name

    def _position(self, column: str) -> int:
        assert self.columns is not None
        return list(self.columns).index(column)

    def _table(self, name: str, kinds: dict[str, ColumnKind]) -> sa.Table:
        return sa.Table(
            name,
            sa.MetaData(),
            *(
                sa.Column(
                    column,
                    self._column_type(column, kind),
                    primary_key=column in self._keys,
                    autoincrement=False,
                )
                for column, kind in kinds.items()
            ),
        )

    def _column_type(self, name: str, kind: ColumnKind) -> Any:
        # On SQLite a single integer key declared INTEGER (not BIGINT) is the rowid itself:
        # rows are stored by key, with no separate index to maintain on every insert.
        if self.dialect == "sqlite" and kind == "integer" and self._keys == [name]:
            return sa.Integer()
        return _TYPES[kind]

    def prepare(self, conn: sa.Connection, records: Sequence[dict[str, Any]]) -> list[SchemaChange]:
        """Create the table, add and widen the columns these records need, and check
        their values; returns what changed (nothing, for most batches)."""
        try:
            return self._prepare(conn, records)
        except BaseException:
            self.columns = None  # the transaction will not commit: read the table again
            raise

    def _prepare(
        self, conn: sa.Connection, records: Sequence[dict[str, Any]]
    ) -> list[SchemaChange]:
        if self.columns is None:
            self._load(conn)
        assert self.columns is not None
        self._prepared = _Prepared(records, [], [])
        if not records:
            return []
        added: list[tuple[str, str]] = []  # (field, column) of the columns to add
        if not set().union(*records) <= self._fields.keys():
            added = self._place(dict.fromkeys(k for r in records for k in r))
        fields = self._sources + [f for f, _ in added]
        if not fields:  # no table yet, and records without a single field
            reason = f"table {self.name}: the record has no fields, so nothing to store"
            self._prepared = _Prepared(records, [], [(r, reason) for r in records])
            return []
        kinds: list[ColumnKind | None] = [*self.columns.values()] + [None] * len(added)
        columns = [*self.columns, *(column for _, column in added)]
        names = [self._label(f, c) for f, c in zip(fields, columns, strict=True)]
        keys = {i for i, f in enumerate(fields) if f in self.primary_key}
        check = _Check(_rows(records, fields), len(fields))
        check.unstorable(self.dialect, kinds, keys, names)
        needed = [
            _kind_needed(kind, values, types)
            for kind, values, types in zip(kinds, check.columns, check.types, strict=True)
        ]
        changes = self._apply(conn, fields, added, kinds, needed)
        check.convert(self.dialect, [self.columns[self._fields[f]] for f in fields], names)
        rows = check.rows
        extra = len(self.columns) - len(fields)
        if extra:  # a new table's key columns no record had
            rows = [row + (None,) * extra for row in rows]
        failures = [
            (records[i], f"table {self.name}, {reason}")
            for i, reason in sorted(check.failed.items())
        ]
        prepared = _Prepared(records, rows, failures)
        if len(self.primary_key) == 1 and self.primary_key[0] in fields:
            at = fields.index(self.primary_key[0])
            prepared.keys = check.columns[at]
            key_kind = self.columns[self._keys[0]]
            prepared.integer_keys = key_kind == "integer" and check.types[at] <= {int}
        self._prepared = prepared
        return changes

    @staticmethod
    def _label(field: str, column: str) -> str:
        return column if field == column else f"{column} (field {field})"

    def _place(self, batch_fields: dict[str, None]) -> list[tuple[str, str]]:
        """Give each name not seen before its column: an existing one that is its own
        (a later run finds it by the same rule), else a new one; returns the new ones."""
        assert self.columns is not None
        added: list[tuple[str, str]] = []
        taken: set[str] = set()
        for name in batch_fields:
            if name in self._fields and self._sources[self._position(self._fields[name])] == name:
                continue
            column = self._column_for(name)
            if column in self.columns:
                self._fields[name] = column
                self._sources[self._position(column)] = name
            elif column not in taken:
                taken.add(column)
                self._folded.setdefault(_fold(column), column)
                added.append((name, column))
        return added

    def _apply(
        self,
        conn: sa.Connection,
        fields: list[str],
        added: list[tuple[str, str]],
        kinds: list[ColumnKind | None],
        needed: list[ColumnKind | None],
    ) -> list[SchemaChange]:
        """Make the table hold the `needed` kinds: create it, add columns, widen them."""
        assert self.columns is not None
        exists = bool(self.columns)
        changes: list[SchemaChange] = []
        widened: dict[str, tuple[ColumnKind, ColumnKind]] = {}
        for name, kind, want in zip(fields, kinds, needed, strict=True):
            if kind is None or want is None or want == kind:
                continue
            column = self._fields[name]
            if kind == "integer" and want == "float" and self._holds_big_integers(conn, column):
                want = "text"
            widened[column] = (kind, want)
            changes.append(SchemaChange(column, want, kind, None if name == column else name))
        first = len(self.columns)
        for (name, column), want in zip(added, needed[first:], strict=True):
            kind_new: ColumnKind = want or "text"
            self.columns[column] = kind_new
            self._sources.append(name)
            self._fields[name] = column
            changes.append(SchemaChange(column, kind_new, None, None if name == column else name))
        for column, (_, want) in widened.items():
            self.columns[column] = want
        if not changes:
            return changes
        self._statements.clear()
        if not exists:
            for key in self.primary_key:
                if key not in self._fields:
                    column = self._column_for(key)
                    self.columns[column] = "text"
                    self._sources.append(key)
                    self._fields[key] = column
            self._keys = [self._fields[k] for k in self.primary_key]
            self._table(self.name, self.columns).create(conn)
            return changes
        q = self._quote
        for change in changes:
            if change.previous is None:
                column_type = _TYPES[change.kind].compile(dialect=conn.dialect)
                conn.exec_driver_sql(
                    f"ALTER TABLE {q(self.name)} ADD COLUMN {q(change.column)} {column_type}"
                )
        if widened and self.dialect == "postgresql":
            self._alter(conn, widened)
        elif widened:
            self._rebuild(conn, widened)
        return changes

    def _holds_big_integers(self, conn: sa.Connection, column: str) -> bool:
        """Whether `column` has an integer a double cannot hold exactly."""
        q = self._quote
        sql = (
            f"SELECT 1 FROM {q(self.name)} "
            f"WHERE {q(column)} > {_EXACT} OR {q(column)} < -{_EXACT} LIMIT 1"
        )
        return conn.exec_driver_sql(sql).first() is not None

    def _alter(
        self, conn: sa.Connection, widened: dict[str, tuple[ColumnKind, ColumnKind]]
    ) -> None:
        """PostgreSQL: change the columns' types in place (`USING` converts the rows)."""
        q = self._quote
        for column, (_, new) in widened.items():
            target = _TYPES[new].compile(dialect=conn.dialect)
            conn.exec_driver_sql(
                f"ALTER TABLE {q(self.name)} ALTER COLUMN {q(column)} TYPE {target} "
                f"USING CAST({q(column)} AS {target})"
            )

    def _rebuild(
        self, conn: sa.Connection, widened: dict[str, tuple[ColumnKind, ColumnKind]]
    ) -> None:
        """SQLite: copy the table into one with the wider columns, in the transaction,
        and put it in the old one's place with the old one's indexes and triggers."""
        assert self.columns is not None
        q = self._quote
        temp = f"interlink_widen_{self.name}"
        extras = (
            conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? "
                "AND type IN ('index', 'trigger') AND sql IS NOT NULL",
                (self.name,),
            )
            .scalars()
            .all()
        )
        driver = conn.connection.driver_connection
        assert driver is not None
        # Numbers become text in Python: SQLite's own CAST keeps 15 digits of a double.
        driver.create_function("interlink_text", 2, _sqlite_text, deterministic=True)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q(temp)}")
        self._table(temp, self.columns).create(conn)
        names = ", ".join(q(c) for c in self.columns)
        values = ", ".join(
            f"interlink_text({q(c)}, '{widened[c][0]}')"
            if c in widened and widened[c][1] == "text"
            else q(c)
            for c in self.columns
        )
        conn.exec_driver_sql(f"INSERT INTO {q(temp)} ({names}) SELECT {values} FROM {q(self.name)}")
        conn.exec_driver_sql(f"DROP TABLE {q(self.name)}")
        # A view that names the table would stop a modern RENAME (its table is gone for a
        # moment); the legacy RENAME leaves views alone, and they find the new table.
        legacy = conn.exec_driver_sql("PRAGMA legacy_alter_table").scalar()
        conn.exec_driver_sql("PRAGMA legacy_alter_table = ON")
        try:
            conn.exec_driver_sql(f"ALTER TABLE {q(temp)} RENAME TO {q(self.name)}")
        finally:
            conn.exec_driver_sql(f"PRAGMA legacy_alter_table = {'ON' if legacy else 'OFF'}")
        for sql in extras:
            conn.exec_driver_sql(sql)

    def truncate(self, conn: sa.Connection) -> None:
        if self.columns is None:
            self._load(conn)
        if self.columns:
            conn.exec_driver_sql(f"DELETE FROM {self._quote(self.name)}")

    # -- rows -------------------------------------------------------------------------------

    def _placeholder(self, kind: ColumnKind) -> str:
        mark = "?" if self.dialect == "sqlite" else "%s"
        if kind == "json" and self.dialect == "postgresql":
            return f"CAST({mark} AS JSONB)"
        return mark

    def _statement(self, columns: tuple[str, ...]) -> str:
        sql = self._statements.get(columns)
        if sql is not None:
            return sql
        assert self.columns is not None
        q = self._quote
        table = q(self.name)
        names = ", ".join(q(c) for c in columns)
        values = ", ".join(self._placeholder(self.columns[c]) for c in columns)
        sql = f"INSERT INTO {table} ({names}) VALUES ({values})"
        if self._keys and self.mode != "append":
            keys = ", ".join(q(k) for k in self._keys)
            others = [c for c in columns if c not in self._keys]
            if others:
                assignments = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in others)
                distinct = " OR ".join(
                    f"{table}.{q(c)} IS DISTINCT FROM excluded.{q(c)}"
                    if self.dialect == "postgresql"
                    else f"{table}.{q(c)} IS NOT excluded.{q(c)}"
                    for c in others
                )
                sql += f" ON CONFLICT ({keys}) DO UPDATE SET {assignments} WHERE {distinct}"
            else:
                sql += f" ON CONFLICT ({keys}) DO NOTHING"
        self._statements[columns] = sql
        return sql

    def _existing(self, conn: sa.Connection, prepared: _Prepared) -> int:
        """How many of the rows' keys are in the table already (0 without a key)."""
        rows = prepared.rows
        if not self._keys or self.mode == "append":
            return 0
        assert self.columns is not None
        q = self._quote
        mark = "?" if self.dialect == "sqlite" else "%s"
        at = [self._position(k) for k in self._keys]
        if len(at) == 1:
            key = self._keys[0]
            values = list(set(prepared.keys or map(itemgetter(at[0]), rows)) - {None})
            # One range probe first: a batch of new integer keys (a first load, or records
            # added since the last run) finds nothing in its range and needs no IN lookup.
            if prepared.integer_keys and values:
                sql = (
                    f"SELECT 1 FROM {q(self.name)} WHERE {q(key)} BETWEEN {mark} AND {mark} LIMIT 1"
                )
                if conn.exec_driver_sql(sql, (min(values), max(values))).first() is None:
                    return 0
            found = 0
            for start in range(0, len(values), 900):
                chunk = values[start : start + 900]
                sql = (
                    f"SELECT COUNT(*) FROM {q(self.name)} "
                    f"WHERE {q(key)} IN ({', '.join([mark] * len(chunk))})"
                )
                found += conn.exec_driver_sql(sql, tuple(chunk)).scalar_one()
            return found
        # Composite keys: count row by row (rare, and batches are small).
        where = " AND ".join(f"{q(k)} = {mark}" for k in self._keys)
        sql = f"SELECT COUNT(*) FROM {q(self.name)} WHERE {where}"
        return sum(
            conn.exec_driver_sql(sql, tuple(row[i] for i in at)).scalar_one() for row in rows
        )

    def write(self, conn: sa.Connection, records: Sequence[dict[str, Any]]) -> WriteCounts:
        """Insert or upsert `records` (prepared) in the caller's transaction; the records
        no column could take come back in `failures`, the others are written."""
        prepared = self._prepared
        if prepared is None or prepared.records is not records:
            self.prepare(conn, records)
            prepared = self._prepared
            assert prepared is not None
        self._prepared = None
        rows = prepared.rows
        counts = WriteCounts(failures=prepared.failures)
        if not rows:
            return counts
        assert self.columns is not None
        existing = self._existing(conn, prepared)
        cursor = conn.exec_driver_sql(self._statement(tuple(self.columns)), rows)
        changed = max(cursor.rowcount, 0)
        if self.mode == "append" or not self._keys:
            counts.created = len(rows)
            return counts
        counts.created = len(rows) - existing
        counts.updated = max(changed - counts.created, 0)
        counts.unchanged = existing - counts.updated
        return counts
