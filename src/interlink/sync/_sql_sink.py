"""The SQL table destination: records into a table of the configured database.

How a run writes, by what it reads (`WritePlan`):

- an incremental or merge read writes into the table itself, batch by batch;
- `write: replace`, and a full refresh of an `append` table, load into a staging table
  (`interlink_stage_<table>`) that replaces the table in the transaction of the last
  batch, once the read is complete: readers never see a half-filled table, a killed run
  resumes into its staging table, and the old table stays until the swap;
- a trial (`--limit`) that would replace writes into a scratch table dropped at the end;
- a run by id (`WritePlan.by_id`) upserts (or appends) into the table itself, whatever the
  write mode, and leaves every staging and seen-keys table as it is: a read interrupted
  before it still resumes with what it had;
- an incremental read of an `append` table starts AT the cursor (an API filters with `>=`,
  or interlink keeps records not older than it), so the records of the last read's final
  instant come again, and so do those it read past its signpost (changed after it began:
  its cursor stops before them, see `connectors._cursor`): a record with a value from the
  cursor to the highest the last read saw is appended only when the table has no
  identical row (`reads_from`, `_append_window`: the lookups go through an index on the
  incremental field's column). A record changed since differs, and is appended;
- with `deletes:`, a complete full read marks (`soft`: `_deleted_at`) or deletes (`hard`)
  the rows it did not see (their keys are collected in `interlink_seen_<table>`, committed
  with each batch so a resumed read keeps them), and records that `deleted_field` marks
  deleted are marked or deleted as they arrive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

from interlink.config import PipelineConfig
from interlink.connectors import Record
from interlink.store import Connection, Store, has_table, quoter

from ._append_window import AppendWindow
from ._column_kinds import as_text
from ._sink import BatchCounts, Failure, WritePlan
from ._table_writer import TableWriter

__all__ = ["DELETED_AT", "SqlSink", "is_deleted", "side_table"]

DELETED_AT = "_deleted_at"
"""The column `deletes: soft` sets on rows the source no longer has (ISO-8601, UTC)."""

_MAX_NAME = 63  # PostgreSQL's identifier limit; SQLite has none


def side_table(prefix: str, table: str) -> str:
    """The name of one of interlink's tables beside `table` (staging, seen keys, scratch),
    kept within PostgreSQL's 63-byte identifiers."""
    name = f"interlink_{prefix}_{table}"
    if len(name.encode()) <= _MAX_NAME:
        return name
    digest = hashlib.sha1(table.encode(), usedforsecurity=False).hexdigest()[:10]
    return f"interlink_{prefix}_{table[:30]}_{digest}"


def is_deleted(value: Any) -> bool:
    """Whether a `deleted_field` value says the record is deleted: true, a non-zero
    number, a timestamp or any non-empty text other than "false"/"0"/"no"."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "null")
    if isinstance(value, int | float):
        return value != 0
    return True


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _changes(prepared: Iterable[Any]) -> list[tuple[str, str, str | None]]:
    """(column, kind, previous kind) of each schema change `TableWriter.prepare` made."""
    changes: list[tuple[str, str, str | None]] = []
    for change in prepared:
        if isinstance(change, tuple):
            changes.append((str(change[0]), str(change[1]), None))
        else:
            changes.append((change.column, change.kind, getattr(change, "previous", None)))
    return changes


class SqlSink:
    """Writes each batch into a table inside the caller's transaction; see the module
    docstring for staging, trials and deletions.

    The table is created from the first records and grows a column for every new field,
    each one recorded in `interlink_schema_changes`.
    """

    verbatim = True

    def __init__(self, store: Store, table: str, pipeline: PipelineConfig, *, key: str) -> None:
        self.store = store
        self.table = table
        self.target = f"table {table}"
        configured = pipeline.destination.primary_key or key
        self.primary_key = [configured] if isinstance(configured, str) else list(configured)
        self.source_key = key
        """The source's primary key: what a failed record is named (and owed) by."""
        self._sent: list[tuple[Record, Record]] = []
        self.mode = pipeline.write
        self.deletes = pipeline.deletes
        self.deleted_field = pipeline.deleted_field
        self._keyed = self.mode != "append"
        self._single_key = (
            self.primary_key[0] if self._keyed and len(self.primary_key) == 1 else None
        )
        self.staging = side_table("stage", table)
        self.scratch = side_table("trial", table)
        self.seen = side_table("seen", table)
        self.live = self._writer(table)
        self.writer = self.live
        self.plan = WritePlan(full=False, staged=False, resumed=False)
        self._track_seen = False
        self._seen_ready = False
        self._live_known: dict[str, Any] | None = None
        self._dialect = store.dialect
        self._quote = quoter(self._dialect)
        self._window: AppendWindow | None = None
        self._at_cursor: set[int] = set()
        if self.deletes == "soft":
            self.verbatim = False  # every row written gets _deleted_at cleared

    def _writer(self, table: str) -> TableWriter:
        return TableWriter(
            self.store.dialect,
            table,
            primary_key=self.primary_key if self._keyed else (),
            mode="merge" if self._keyed else "append",
        )

    # -- record checks ------------------------------------------------------------------

    def rejects(self, record: Record) -> str | None:
        """Why a merge could not place this record (a key field is missing), or None."""
        # Runs once per record: the usual single key is one lookup, no generator.
        if self._single_key is not None:
            missing = record.get(self._single_key) is None
        else:
            missing = self._keyed and any(record.get(k) is None for k in self.primary_key)
        if missing:
            return f"no value for the key {', '.join(self.primary_key)} after mapping"
        return None

    def any_rejected(self, records: Sequence[Record]) -> bool:
        """True when some record of the batch lacks a key field (one C-level pass)."""
        if not self._keyed:
            return False
        try:
            if self._single_key is not None:
                return None in map(dict.get, records, repeat(self._single_key))
            return any(self.rejects(record) is not None for record in records)
        except (TypeError, AttributeError):  # a record that is not an object: the slow path
            return True

    # -- the read's life ----------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[Connection]:
        """Its batches commit on the store's lightest connection (sqlite3's own on an
        SQLite file): every statement of this sink is SQL text."""
        return self.store.begin()

    def _exists(self, conn: Connection, table: str) -> bool:
        return has_table(conn, table)

    def _drop(self, conn: Connection, table: str) -> None:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self._quote(table)}")

    def start(self, conn: Connection, plan: WritePlan, run_id: int) -> None:
        """In the run's first transaction: choose the table written to and set up the
        staging, scratch or seen-keys table the plan needs."""
        self.plan = plan
        if plan.by_id:
            self.writer = self.live
            return
        if plan.trial:
            if plan.staged:
                self._drop(conn, self.scratch)
                self.writer = self._writer(self.scratch)
            return
        if plan.staged:
            if not plan.resumed:
                self._drop(conn, self.staging)
            self.writer = self._writer(self.staging)
        else:
            self._drop(conn, self.staging)
        self._track_seen = bool(self.deletes) and plan.full and not plan.staged
        if not self._track_seen:
            self._drop(conn, self.seen)
            return
        if plan.resumed:
            # Keys seen before the interruption are in the table; without it (a read begun
            # before `deletes:` was set) this read cannot tell what is gone.
            self._seen_ready = self._track_seen = self._exists(conn, self.seen)
        else:
            self._drop(conn, self.seen)
            self._create_seen(conn)

    def reads_from(self, field: str | None, since: Any, upto: Any = None) -> None:
        """An incremental read of an `append` table from cursor `since` of `field`: records
        from that value to `upto` (the highest value the read before saw) may have been
        read by it, and are appended again only when they differ from every row of the
        table (see the module docstring)."""
        if self.mode == "append":
            self._window = AppendWindow.of(self.table, self._dialect, field, since, upto)

    async def send(self, items: list[tuple[Record, Record]]) -> list[Record]:
        """Nothing leaves the database: the mapped records go to `commit` as they are."""
        if self._window is not None:
            self._at_cursor = self._window.within(items)
        self._sent = items
        return [mapped for _, mapped in items]

    def commit(self, conn: Connection, sent: list[Record], run_id: int) -> BatchCounts:
        """Write the batch (create or grow the table first) in the caller's transaction."""
        counts = BatchCounts()
        if self._at_cursor and self._window is not None:
            at_cursor, self._at_cursor = self._at_cursor, set()
            again = self._window.held(
                conn,
                self._writer(self.table),
                [r for r in sent if id(r) in at_cursor],
                lambda column: side_table("cursor", f"{self.table}_{column}"),
            )
            if again:
                counts.unchanged += len(again)
                seen = {id(r) for r in again}
                sent = [r for r in sent if id(r) not in seen]
        records = sent
        gone: list[Record] = []
        if self.deleted_field is not None:
            field = self.deleted_field
            records, gone = [], []
            for record in sent:
                (gone if is_deleted(record.get(field)) else records).append(record)
        if self.deletes == "soft" and not self.plan.trial:
            for record in records:
                record[DELETED_AT] = None  # a record seen again is live again
        if records:
            self._prepare(conn, records, run_id)
            written = self.writer.write(conn, records)
            counts.created = written.created
            counts.updated = written.updated
            counts.unchanged += written.unchanged
            failures = getattr(written, "failures", ())
            if failures:
                counts.failures.extend(self._named(failures))
        if gone and not self.plan.trial:
            if self.deletes == "hard":
                counts.deleted += self._delete_keys(conn, gone)
            else:
                counts.deleted += self._mark_keys(conn, gone, run_id)
        if self._track_seen:
            self._remember_seen(conn, sent)
        self._sent = []  # the page's records go as soon as the batch is written
        return counts

    def finish(self, conn: Connection, *, complete: bool, failed: int, run_id: int) -> int:
        """Swap the staging table in, or apply deletions by absence, when `complete` (and,
        for deletions by absence, no record failed: its row must not go)."""
        if self.plan.trial or self.plan.by_id:
            return 0
        if self.plan.staged:
            # A table missing the failed records' rows is never swapped in.
            if complete and not failed:
                self._swap(conn)
            else:
                self._drop(conn, self.staging)
            return 0
        deleted = 0
        if self._track_seen and complete and not failed and self._seen_ready:
            deleted = self._delete_unseen(conn, run_id)
        self._drop(conn, self.seen)
        return deleted

    def leftovers(self, conn: Connection, *, complete: bool) -> list[str]:
        """What a table holds is what the run wrote and kept; what there is to say is
        why its window's lookups read the whole table, if they did."""
        if self._window is None:
            return []
        notes, self._window.notes = self._window.notes, []
        return notes

    def discard(self, conn: Connection) -> None:
        """Drop a trial's scratch table, or what an abandoned read left (its staging and
        seen-keys tables): the next read starts afresh."""
        if self.plan.by_id:
            return  # a run by id made none, and must not drop an interrupted read's
        if self.plan.trial:
            if self.plan.staged:
                self._drop(conn, self.scratch)
            return
        self._drop(conn, self.staging)
        self._drop(conn, self.seen)

    # -- helpers ------------------------------------------------------------------------

    def _named(self, failures: Sequence[tuple[Record, str]]) -> list[Failure]:
        """The writer's failed rows, each named by its source record's key (a key column
        may hold a mapped value, and an append table has none), as every failure is."""
        source_of = {id(mapped): source for source, mapped in self._sent}
        named: list[Failure] = []
        for record, reason in failures:
            source = source_of.get(id(record))
            key = source.get(self.source_key) if source is not None else None
            named.append((key, "write", ValueError(reason)))
        return named

    def _prepare(self, conn: Connection, records: Sequence[Record], run_id: int) -> None:
        for column, kind, previous in _changes(self.writer.prepare(conn, records)):
            if self.writer is not self.live:
                # A staging or scratch table is new each time: record only what the
                # destination itself did not have.
                if self.writer.name == self.scratch:
                    continue
                if self._live_known is None:
                    self._live_known = self._live_columns(conn)
                if self._live_known.get(column) == kind:
                    continue
            self.store.record_schema_change(
                conn, self.table, column, kind, run_id, previous_type=previous
            )

    def _live_columns(self, conn: Connection) -> dict[str, Any]:
        """The destination's columns and their kinds, as a writer of it reads them."""
        reader = self._writer(self.table)
        reader.prepare(conn, [])
        return dict(reader.columns or {})

    def _key_rows(self, records: Sequence[Record]) -> list[tuple[Any, ...]]:
        """The key values of `records` as the written table's key columns hold them (a key
        column widened to text holds text)."""
        kinds = self.writer.columns or {}
        text = [kinds.get(k) == "text" for k in self.primary_key]
        rows = []
        for record in records:
            values = tuple(record.get(k) for k in self.primary_key)
            if None in values:
                continue
            rows.append(tuple(as_text(v) if t else v for v, t in zip(values, text, strict=True)))
        return rows

    def _delete_keys(self, conn: Connection, records: Sequence[Record]) -> int:
        """Delete the rows of records the API reported deleted (`deletes: hard`)."""
        table = self.writer.name
        if not self._exists(conn, table):
            return 0
        mark = "?" if self._dialect == "sqlite" else "%s"
        where = " AND ".join(f"{self._quote(k)} = {mark}" for k in self.primary_key)
        rows = self._key_rows(records)
        if not rows:
            return 0
        result = conn.exec_driver_sql(f"DELETE FROM {self._quote(table)} WHERE {where}", rows)
        return max(result.rowcount, 0)

    def _mark_keys(self, conn: Connection, records: Sequence[Record], run_id: int) -> int:
        """Set `_deleted_at` on the rows of records the API reported deleted (`soft`); the
        rows keep their last values."""
        table = self.writer.name
        if not self._exists(conn, table):
            return 0
        stamp = _now_iso()
        self._prepare(conn, [{DELETED_AT: stamp}], run_id)
        mark = "?" if self._dialect == "sqlite" else "%s"
        q = self._quote
        where = " AND ".join(f"{q(k)} = {mark}" for k in self.primary_key)
        sql = (
            f"UPDATE {q(table)} SET {q(DELETED_AT)} = {mark} "
            f"WHERE {q(DELETED_AT)} IS NULL AND {where}"
        )
        rows = [(stamp, *key) for key in self._key_rows(records)]
        if not rows:
            return 0
        return max(conn.exec_driver_sql(sql, rows).rowcount, 0)

    def _create_seen(self, conn: Connection) -> None:
        """The seen-keys table, created in the read's first transaction (so a read that
        sees no record at all still proves every row gone)."""
        q = self._quote
        columns = ", ".join(f"{q(k)} TEXT NOT NULL" for k in self.primary_key)
        keys = ", ".join(q(k) for k in self.primary_key)
        conn.exec_driver_sql(f"CREATE TABLE {q(self.seen)} ({columns}, PRIMARY KEY ({keys}))")
        self._seen_ready = True

    def _remember_seen(self, conn: Connection, records: Sequence[Record]) -> None:
        """Add the batch's keys to the seen-keys table, as the database itself spells the
        rows' keys in text: the same CAST the final comparison uses, whatever the type."""
        if not records or not self._seen_ready or not self._exists(conn, self.writer.name):
            return
        q = self._quote
        mark = "?" if self._dialect == "sqlite" else "%s"
        names = ", ".join(q(k) for k in self.primary_key)
        casts = ", ".join(f"CAST({q(k)} AS TEXT)" for k in self.primary_key)
        where = " AND ".join(f"{q(k)} = {mark}" for k in self.primary_key)
        rows = self._key_rows(records)
        if rows:
            conn.exec_driver_sql(
                f"INSERT INTO {q(self.seen)} ({names}) SELECT {casts} "
                f"FROM {q(self.writer.name)} WHERE {where} ON CONFLICT DO NOTHING",
                rows,
            )

    def _unseen(self) -> str:
        """The condition of a destination row whose key the read did not see."""
        q = self._quote
        table = q(self.table)
        match = " AND ".join(f"s.{q(k)} = CAST({table}.{q(k)} AS TEXT)" for k in self.primary_key)
        return f"NOT EXISTS (SELECT 1 FROM {q(self.seen)} AS s WHERE {match})"

    def _delete_unseen(self, conn: Connection, run_id: int) -> int:
        """Mark or delete the rows a complete full read did not see."""
        table = self._quote(self.table)
        if not self._exists(conn, self.table):
            return 0
        if self.deletes == "hard":
            return max(
                conn.exec_driver_sql(f"DELETE FROM {table} WHERE {self._unseen()}").rowcount, 0
            )
        # The column may not exist yet (a table made before `deletes: soft`, and a read
        # that wrote no row): make it, then mark.
        self._prepare(conn, [{DELETED_AT: _now_iso()}], run_id)
        mark = "?" if self._dialect == "sqlite" else "%s"
        column = self._quote(DELETED_AT)
        sql = f"UPDATE {table} SET {column} = {mark} WHERE {column} IS NULL AND {self._unseen()}"
        return max(conn.exec_driver_sql(sql, (_now_iso(),)).rowcount, 0)

    def _swap(self, conn: Connection) -> None:
        """Put the staging table in the destination's place (in the caller's transaction)."""
        q = self._quote
        if not self._exists(conn, self.staging):
            # The source had no records at all: so has the destination now.
            if self._exists(conn, self.table):
                conn.exec_driver_sql(f"DELETE FROM {q(self.table)}")
            return
        self._drop(conn, self.table)
        conn.exec_driver_sql(f"ALTER TABLE {q(self.staging)} RENAME TO {q(self.table)}")
        if self._dialect == "postgresql":
            # The key's index keeps the staging table's name; the next staging table will
            # want that name again.
            for (name,) in conn.exec_driver_sql(
                "SELECT conname FROM pg_constraint WHERE conrelid = CAST(%s AS regclass) "
                "AND contype = 'p'",
                (q(self.table),),
            ).all():
                wanted = f"{self.table[:58]}_pkey"
                if name != wanted:
                    conn.exec_driver_sql(
                        f"ALTER TABLE {q(self.table)} RENAME CONSTRAINT {q(name)} TO {q(wanted)}"
                    )
        self.live.reload()
