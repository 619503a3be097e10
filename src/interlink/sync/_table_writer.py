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
(indexes, triggers and views are kept; `_column_widening`). `prepare` returns every
change as a `SchemaChange`.

Column names are what the database can hold: on PostgreSQL a field name over 63 bytes gets
its first bytes and a short hash of the whole name; on SQLite, where column names ignore
case, a field that differs from an existing column only in case (`Name` beside `name`) gets
`Name__<hash>`. Both are derived from the field name and the table's columns, so the same
field finds the same column in every later run.

A value no column can take fails its record alone, with the reason, in
`WriteCounts.failures`: an object or array in a key column, a NaN on SQLite (it would read
back as NULL), the NUL character in a string on PostgreSQL, text with a lone surrogate (no
UTF-8 form), JSON that cannot be written (an integer beyond 64 bits). The rest of the batch
is written.

Every statement is SQL text run through the connection's `exec_driver_sql`
(`store.Connection`: sqlite3's own on an SQLite file, SQLAlchemy's on PostgreSQL), rows
with the driver's `executemany`; on PostgreSQL a batch of `COPY_MIN_ROWS` or more goes in
by COPY (`_pg_copy`, on SQLAlchemy's connection, which PostgreSQL always has), with the
same upsert and the same counts. The checks above look at each column's set of
value types once per batch; only a column whose values do not all fit it gets per-value
work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from interlink.errors import ConfigError
from interlink.store import Connection, quoter

from ._batch_check import BatchCheck
from ._column_kinds import ColumnKind, kind_needed
from ._column_names import PG_NAME_BYTES, column_name, fold_name, name_digest
from ._column_widening import (
    alter_columns,
    create_table_sql,
    holds_big_integers,
    rebuild_sqlite_table,
    sql_type,
)
from ._insert_sql import InsertStatements
from ._keys_present import keys_present
from ._table_columns import read_columns

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["COPY_MIN_ROWS", "SchemaChange", "TableWriter", "WriteCounts"]

COPY_MIN_ROWS = 50
"""On PostgreSQL a batch this large goes in by COPY; a smaller one (an incremental run's
few changes) row by row, where COPY's extra statements would cost more than they save."""

WriteMode = Literal["append", "replace", "merge"]


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
        database: str | sa.Engine,
        table: str,
        *,
        primary_key: Sequence[str] = (),
        mode: WriteMode = "merge",
    ) -> None:
        self.name = table
        self.primary_key = list(primary_key)
        self.mode = mode
        if mode == "merge" and not self.primary_key:
            raise ValueError(f"table {table}: write mode merge needs a primary key")
        self.dialect: str = database if isinstance(database, str) else database.dialect.name
        if self.dialect == "postgresql" and len(table.encode()) > PG_NAME_BYTES:
            raise ConfigError(
                f"the table name {table!r} is {len(table.encode())} bytes long and "
                f"PostgreSQL keeps {PG_NAME_BYTES}: choose a shorter one",
                key="destination",
            )
        self._quote = quoter(self.dialect)
        self.columns: dict[str, ColumnKind] | None = None
        """The table's columns and their kinds, in table order (None: not read yet)."""
        self._inserts = InsertStatements(table, self.dialect, self._quote, upsert=mode != "append")
        self._fields: dict[str, str] = {}  # field -> its column, for every field seen
        self._sources: list[str] = []  # the field each column is filled from, in order
        self._folded: dict[str, str] = {}  # SQLite: a column's name without case -> it
        self._keys: list[str] = []  # the key's columns
        self._declared: dict[str, str] = {}  # a column's type as read, until we change it
        self._prepared: _Prepared | None = None
        self._temp_tables: bool | None = None  # PostgreSQL: may the role create them?
        self.copy_min_rows = COPY_MIN_ROWS
        """PostgreSQL: a batch of this many rows or more goes in by COPY."""

    # -- schema -----------------------------------------------------------------------------

    def _load(self, conn: Connection) -> None:
        """Read the table's columns; which field each one holds is derived again."""
        found = read_columns(conn, self.name) or []
        columns: dict[str, ColumnKind] = {name: kind for name, kind, _ in found}
        self._declared = {name: declared for name, _, declared in found}
        self.columns = columns
        self._fields = {name: name for name in columns}
        self._sources = list(columns)
        self._folded = {fold_name(name): name for name in columns}
        self._inserts.forget()
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
            owner = self._folded.get(fold_name(name))
            if owner is not None and owner != name:
                # `Name` beside `name`: another field, so a column of its own.
                name = f"{field}__{name_digest(field, 8)}"
        return name

    def column_of(self, field: str) -> str | None:
        """The column that holds `field`, when the table has one (read by `prepare`)."""
        if not self.columns:
            return None
        column = self._column_for(field)
        return column if column in self.columns else None

    def holds_plain_text(self, column: str) -> bool:
        """Whether `column` stores text as it is given, so that `column = ?` with a text
        value means what `CAST(column AS TEXT) = ?` does, and an index on it can answer:
        SQLite's TEXT affinity, PostgreSQL's text or varchar (not a column without a
        declared type, a date, a UUID, an array, nor char(n), which pads)."""
        if not self.columns or self.columns.get(column) != "text":
            return False
        declared = self._declared.get(column)
        if declared is None:  # made or changed by interlink: the type it declares
            declared = self._column_type(column, "text")
        declared = declared.upper()
        if self.dialect == "sqlite":
            # SQLite's affinity rules: INT first, then CHAR, CLOB or TEXT ('' has none).
            return "INT" not in declared and any(t in declared for t in ("CHAR", "CLOB", "TEXT"))
        if declared.endswith("]"):  # an array
            return False
        return declared == "TEXT" or declared.startswith("CHARACTER VARYING")

    def compared_as_is(self, column: str) -> bool:
        """Whether a lookup compares `column` as `column = ?` (a number's column, or one
        holding plain text): what an index on it can answer."""
        kind = (self.columns or {}).get(column)
        return kind in ("integer", "float") or self.holds_plain_text(column)

    def _position(self, column: str) -> int:
        assert self.columns is not None
        return list(self.columns).index(column)

    def _table(self, name: str, kinds: dict[str, ColumnKind]) -> str:
        """The `CREATE TABLE` of table `name` with these columns and the key."""
        types = {column: self._column_type(column, kind) for column, kind in kinds.items()}
        return create_table_sql(name, types, self._keys, self._quote)

    def _column_type(self, name: str, kind: ColumnKind) -> str:
        # On SQLite a single integer key declared INTEGER (not BIGINT) is the rowid itself:
        # rows are stored by key, with no separate index to maintain on every insert.
        if self.dialect == "sqlite" and kind == "integer" and self._keys == [name]:
            return "INTEGER"
        return sql_type(kind, self.dialect)

    def prepare(self, conn: Connection, records: Sequence[dict[str, Any]]) -> list[SchemaChange]:
        """Create the table, add and widen the columns these records need, and check
        their values; returns what changed (nothing, for most batches)."""
        try:
            return self._prepare(conn, records)
        except BaseException:
            self.columns = None  # the transaction will not commit: read the table again
            raise

    def _prepare(self, conn: Connection, records: Sequence[dict[str, Any]]) -> list[SchemaChange]:
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
        check = BatchCheck(_rows(records, fields), len(fields))
        check.unstorable(self.dialect, kinds, keys, names)
        needed = [
            kind_needed(kind, values, types)
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
                self._folded.setdefault(fold_name(column), column)
                added.append((name, column))
        return added

    def _apply(
        self,
        conn: Connection,
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
            big = kind == "integer" and want == "float"
            if big and holds_big_integers(conn, self.name, column, self._quote):
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
            self._declared.pop(column, None)  # now what `sql_type` makes of its kind
        if not changes:
            return changes
        self._inserts.forget()
        if not exists:
            for key in self.primary_key:
                if key not in self._fields:
                    column = self._column_for(key)
                    self.columns[column] = "text"
                    self._sources.append(key)
                    self._fields[key] = column
            self._keys = [self._fields[k] for k in self.primary_key]
            conn.exec_driver_sql(self._table(self.name, self.columns))
            return changes
        q = self._quote
        for change in changes:
            if change.previous is None:
                column_type = sql_type(change.kind, self.dialect)
                conn.exec_driver_sql(
                    f"ALTER TABLE {q(self.name)} ADD COLUMN {q(change.column)} {column_type}"
                )
        if widened and self.dialect == "postgresql":
            alter_columns(conn, self.name, widened, self._quote)
        elif widened:
            rebuild_sqlite_table(conn, self.name, self.columns, widened, self._quote, self._table)
        return changes

    def reload(self) -> None:
        """Read the table again at the next call (another table took its name)."""
        self.columns = None
        self._inserts.forget()

    def truncate(self, conn: Connection) -> None:
        if self.columns is None:
            self._load(conn)
        if self.columns:
            conn.exec_driver_sql(f"DELETE FROM {self._quote(self.name)}")

    # -- rows -------------------------------------------------------------------------------

    def _copies(self, conn: Connection, rows: list[tuple[Any, ...]]) -> bool:
        """Whether this batch goes in by COPY (see `_pg_copy`): PostgreSQL, a batch of at
        least `copy_min_rows`, and for a merge a key of integer or text columns that no
        two rows share (else the row-by-row upsert, where the later row wins) and a role
        that may create temporary tables."""
        if self.dialect != "postgresql" or len(rows) < self.copy_min_rows:
            return False
        if not self._keys or self.mode == "append":
            return True
        assert self.columns is not None
        if any(self.columns[k] not in ("integer", "text") for k in self._keys):
            return False
        at = [self._position(k) for k in self._keys]
        keys = map(itemgetter(*at), rows)  # one value, or a tuple of them
        if len(set(keys)) != len(rows):
            return False
        if self._temp_tables is None:
            from ._pg_copy import can_create_temp_tables

            self._temp_tables = can_create_temp_tables(conn)
        return self._temp_tables

    def _existing(self, conn: Connection, prepared: _Prepared) -> int:
        """How many of the rows' keys are in the table already (0 without a key)."""
        if not self._keys or self.mode == "append":
            return 0
        return keys_present(
            conn,
            self.name,
            self._keys,
            [self._position(k) for k in self._keys],
            prepared.rows,
            values=prepared.keys,
            integer_keys=prepared.integer_keys,
            dialect=self.dialect,
            quote=self._quote,
        )

    def _merge_by_copy(
        self, conn: Connection, prepared: _Prepared, columns: tuple[str, ...], existing: int
    ) -> tuple[int, int]:
        """Merge a batch by COPY; returns (rows inserted or changed, keys found before).

        A batch none of whose keys the table has (a first load, records added since the
        last run) is copied straight into the table, in a savepoint: should another
        writer have added one of its keys since `_existing` looked, the COPY fails on the
        key, the savepoint is rolled back and the batch merged through the stage.
        """
        import psycopg  # PostgreSQL only

        from ._pg_copy import copy_rows, merge_by_copy

        rows, quote = prepared.rows, self._quote
        if existing == 0:
            try:
                with conn.begin_nested():
                    return copy_rows(conn, self.name, columns, rows, quote), 0
            except Exception as exc:
                # psycopg's error, or SQLAlchemy's wrapping it (on its connection)
                if not isinstance(getattr(exc, "orig", exc), psycopg.IntegrityError):
                    raise
                existing = self._existing(conn, prepared)
        assert self.columns is not None
        # The stage outlives the run in a reused session: its name covers the types the
        # table's columns had when read (NUMERIC(10, 2) and DOUBLE PRECISION are both
        # float), so a table changed since gets a stage of its own types.
        shape = repr([(c, k, self._declared.get(c)) for c, k in self.columns.items()])
        tail = self._inserts.upsert_tail(self._keys, columns)
        changed = merge_by_copy(conn, self.name, shape, columns, rows, tail, quote)
        return changed, existing

    def write(self, conn: Connection, records: Sequence[dict[str, Any]]) -> WriteCounts:
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
        columns = tuple(self.columns)
        if not self._copies(conn, rows):
            changed = self._inserts.insert(conn, self.columns, self._keys, columns, rows)
        elif self.mode == "append" or not self._keys:
            from ._pg_copy import copy_rows

            changed = copy_rows(conn, self.name, columns, rows, self._quote)
        else:
            changed, existing = self._merge_by_copy(conn, prepared, columns, existing)
        if self.mode == "append" or not self._keys:
            counts.created = len(rows)
            return counts
        counts.created = len(rows) - existing
        counts.updated = max(changed - counts.created, 0)
        counts.unchanged = existing - counts.updated
        return counts
