"""The SQL path: a metric over a table of the configured database, aggregated inside it.

No row is loaded into Python: one query returns a row per (bucket, group) with the
partial aggregates `_tally` needs, and count_distinct with groups asks again for the
totals distinct values cannot be summed into. The query is built in four steps, each a
subquery the database streams through rather than flattens, so that the time column is
parsed once per row:

1. the rows within a prefilter on the raw time column (an index on it is used): epoch
   numbers in the period widened by two days, in seconds or in milliseconds; text whose
   date prefix is within six days of it (compared byte-wise, `COLLATE "C"` on PostgreSQL:
   index such a column with that collation); timestamps likewise. Rows a pipeline
   soft-deleted (`_deleted_at` set) are left out. Out: `w`, `z` (`_sql_expr.time_parts`),
   the group and the value;
2. local seconds `l` from `w` and `z` and the zone's offsets;
3. the bucket of `l` (NULL outside the buckets);
4. the aggregates per bucket and group, of the rows with a bucket.

Column names come from the table's reflection and reach SQL quoted; a `group_by` that
names no column is refused before any query is built.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from interlink.config import ACCOUNT_PLACEHOLDER, MetricConfig
from interlink.errors import ConfigError

from ._buckets import DAY, MARGIN, BucketPlan
from ._sql_expr import (
    TimeKind,
    local_seconds,
    number_value,
    pg_digits,
    pg_number,
    pg_wall,
    text_offset,
    time_kind,
    time_parts,
    value_kind,
)
from ._tally import Cell, GroupKey, Reading
from ._values import group_text

__all__ = ["DELETED_AT", "metric_table", "sql_reading", "table_columns"]

DELETED_AT = "_deleted_at"
"""The column in which a pipeline marks a row deleted (`deletes: soft`)."""
_TEXT_MARGIN = 6
"""Days the text prefilter reaches beyond the period: room for any written offset."""


def metric_table(metric: MetricConfig) -> str:
    """The table an `sql:` metric reads, `{account}` replaced as pipelines replace it."""
    table: str | None = metric.table
    if table is None:
        raise TypeError("not an sql: metric")
    if ACCOUNT_PLACEHOLDER in table:
        from interlink.sync import table_part  # what pipelines name their tables by

        table = table.replace(ACCOUNT_PLACEHOLDER, table_part(metric.account or ""))
    return table


def _reflect(engine: sa.Engine, name: str, metric: MetricConfig) -> sa.Table:
    table = metric_table(metric)
    try:
        return sa.Table(table, sa.MetaData(), autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise ConfigError(
            f"no table {table!r} in the database yet: run the pipeline that writes it first",
            key=f"metrics.{name}.source",
        ) from None


def table_columns(engine: sa.Engine, name: str, metric: MetricConfig) -> list[str]:
    """The columns group_by may name (the table's, without `_deleted_at`)."""
    return [c.name for c in _reflect(engine, name, metric).columns if c.name != DELETED_AT]


def _column(table: sa.Table, field: str, key: str) -> sa.Column[Any]:
    found = table.columns.get(field)
    if found is None or field == DELETED_AT:
        names = [c.name for c in table.columns if c.name != DELETED_AT]
        shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
        raise ConfigError(
            f"no column {field!r} in table {table.name!r} (columns: {shown})", key=key
        )
    return found


def _prefilter(column: Any, kind: TimeKind, plan: BucketPlan, dialect: str) -> Any:
    low, high = plan.local_start - MARGIN, plan.local_end + MARGIN
    if kind == "epoch":
        return sa.or_(
            sa.and_(column >= low, column < high),
            sa.and_(column >= low * 1000, column < high * 1000),
        )
    first = (plan.first - timedelta(days=_TEXT_MARGIN)).isoformat()
    after = (plan.last + timedelta(days=_TEXT_MARGIN + 1)).isoformat()
    if kind == "text":
        target = column.collate("C") if dialect == "postgresql" else column
        return sa.and_(target >= first, target < after)
    if kind == "instant":
        return sa.and_(
            column >= datetime.fromtimestamp(low, UTC),
            column < datetime.fromtimestamp(high, UTC),
        )
    if isinstance(column.type, sa.Date) and not isinstance(column.type, sa.DateTime):
        return sa.and_(column >= date.fromisoformat(first), column < date.fromisoformat(after))
    naive = datetime.fromtimestamp(low, UTC).replace(tzinfo=None)
    naive_end = datetime.fromtimestamp(high, UTC).replace(tzinfo=None)
    return sa.and_(column >= naive, column < naive_end)


def _fence(query: sa.Select[Any], dialect: str) -> sa.Subquery:
    # A LIMIT keeps SQLite from flattening the subquery into the next one (which would
    # copy its expressions, and parse the time once per use); OFFSET 0 does the same on
    # PostgreSQL.
    if dialect == "sqlite":
        return query.limit(-1).subquery()
    return query.offset(0).subquery()


def _bucket(local: Any, plan: BucketPlan) -> Any:
    day = (local - plan.local_start) // DAY
    if plan.granularity == "day":
        return day
    if plan.granularity == "week":
        return day // 7
    starts = plan.bucket_first_day
    whens = [(day < start, index) for index, start in enumerate(starts[1:])]
    return sa.case(*whens, else_=len(starts) - 1) if whens else sa.literal(0, sa.BigInteger)


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class _SqlDistinct:
    """count_distinct's totals, counted again by the database."""

    def __init__(
        self,
        engine: sa.Engine,
        rows: sa.Subquery,
        raw_groups: dict[GroupKey, list[Any]],
    ) -> None:
        self.engine = engine
        self.rows = rows
        self.raw_groups = raw_groups

    def _fetch(self, query: sa.Select[Any]) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(query).all())

    def over(self, excluding: frozenset[GroupKey] | None) -> tuple[dict[int, int], int]:
        rows = self.rows
        distinct = sa.func.count(sa.distinct(rows.c.v))
        condition: Any = rows.c.b.is_not(None)
        if excluding is not None:
            raws = [raw for g in excluding if g is not None for raw in self.raw_groups.get(g, [])]
            kept = rows.c.g.not_in(raws) if raws else sa.true()
            if None in excluding:
                condition = sa.and_(condition, rows.c.g.is_not(None), kept)
            else:
                condition = sa.and_(condition, sa.or_(rows.c.g.is_(None), kept))
        per_bucket = self._fetch(sa.select(rows.c.b, distinct).where(condition).group_by(rows.c.b))
        total = self._fetch(sa.select(distinct).where(condition))[0][0]
        return {int(b): int(n) for b, n in per_bucket}, int(total or 0)

    def per_group(self) -> dict[GroupKey, int]:
        rows = self.rows
        query = (
            sa.select(rows.c.g, sa.func.count(sa.distinct(rows.c.v)))
            .where(rows.c.b.is_not(None))
            .group_by(rows.c.g)
        )
        counts: dict[GroupKey, int] = {}
        for raw, n in self._fetch(query):
            key = group_text(raw)
            counts[key] = counts.get(key, 0) + int(n)
        return counts


def sql_reading(
    engine: sa.Engine,
    name: str,
    metric: MetricConfig,
    plan: BucketPlan,
    group_by: str | None,
    *,
    group_key: str,
) -> Reading:
    """Cells per (group, bucket) of an `sql:` metric; `group_key` is the key a bad
    `group_by` is reported under (`group_by` for a request's, the config's otherwise)."""
    dialect = engine.dialect.name
    table = _reflect(engine, name, metric)
    fields = [c.name for c in table.columns if c.name != DELETED_AT]
    key = f"metrics.{name}"
    time_column = _column(table, metric.time_field, f"{key}.time_field")
    kind = time_kind(time_column, dialect)
    if kind is None:
        raise ConfigError(
            f"column {metric.time_field!r} is {time_column.type}; a time field holds epoch "
            "seconds or milliseconds, ISO-8601 text or timestamps",
            key=f"{key}.time_field",
        )
    group: Any = sa.null()
    if group_by is not None:
        group = _column(table, group_by, group_key)
        if isinstance(group.type, sa.JSON):
            raise ConfigError(
                f"column {group_by!r} holds objects or arrays; group by a column of plain values",
                key=group_key,
            )
    value: Any = sa.null()
    op = metric.op
    if metric.field is not None:
        column = _column(table, metric.field, f"{key}.field")
        if op in ("sum", "avg", "min", "max"):
            numbers = value_kind(column)
            if numbers is None:
                raise ConfigError(
                    f"{op} needs numbers, and column {metric.field!r} is {column.type}",
                    key=f"{key}.field",
                )
            value = number_value(column, numbers, dialect)
        else:
            value = column
    deleted = table.columns.get(DELETED_AT)
    kept: list[Any] = [_prefilter(time_column, kind, plan, dialect)]
    if deleted is not None:
        kept.append(deleted.is_(None))
    if kind == "text" and dialect == "postgresql":
        # The text's digits, then their number, each in a step of its own: PostgreSQL would
        # otherwise compute them again for every use.
        cut = _fence(
            sa.select(
                pg_digits(time_column).label("digits"),
                text_offset(time_column, dialect).label("z"),
                group.label("g"),
                value.label("v"),
            ).where(*kept),
            dialect,
        )
        numbered = _fence(
            sa.select(pg_number(cut.c.digits).label("n"), cut.c.z, cut.c.g, cut.c.v), dialect
        )
        first = sa.select(
            pg_wall(numbered.c.n).label("w"), numbered.c.z, numbered.c.g, numbered.c.v
        )
    else:
        wall, offset = time_parts(time_column, kind, dialect)
        first = sa.select(
            wall.label("w"), offset.label("z"), group.label("g"), value.label("v")
        ).where(*kept)
    step1 = _fence(first, dialect)
    local = sa.type_coerce(local_seconds(step1.c.w, step1.c.z, kind, plan.spans), sa.BigInteger)
    step2 = _fence(sa.select(local.label("l"), step1.c.g, step1.c.v), dialect)
    within = sa.and_(step2.c.l >= plan.local_start, step2.c.l < plan.local_end)
    # NULL outside the buckets, left out by the aggregates' WHERE: a filter here would be
    # a guess to PostgreSQL's planner (a fraction of a percent of the rows), which then
    # sorts a million rows on disk instead of hashing them into a few hundred groups.
    bucket = sa.type_coerce(sa.case((within, _bucket(step2.c.l, plan)), else_=None), sa.BigInteger)
    step3 = _fence(sa.select(bucket.label("b"), step2.c.g, step2.c.v), dialect)
    aggregates, read = _aggregates(op, metric.field is not None, step3.c.v)
    query = (
        sa.select(step3.c.b, step3.c.g, *aggregates)
        .where(step3.c.b.is_not(None))
        .group_by(step3.c.b, step3.c.g)
    )
    cells: dict[tuple[GroupKey, int], Cell] = {}
    raw_groups: dict[GroupKey, list[Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            group_value = row[1]
            text = group_text(group_value) if group_by is not None else None
            if group_value is not None:
                raws = raw_groups.setdefault(text, [])
                if group_value not in raws:
                    raws.append(group_value)
            cell = read(row[2:])
            found = cells.get((text, int(row[0])))
            if found is None:
                cells[(text, int(row[0]))] = cell
            else:
                found.add(cell)
    counter = None
    if op == "count_distinct" and group_by is not None:
        counter = _SqlDistinct(engine, step3, raw_groups)
    elif op == "count_distinct":
        counter = _SqlDistinct(engine, step3, {})
    return Reading(cells, fields, counter)


def _aggregates(op: str, has_field: bool, value: Any) -> tuple[list[Any], Callable[[Any], Cell]]:
    """The aggregate columns an op needs, and how a result row becomes a Cell."""
    rows = sa.func.count()
    if op == "count":
        if not has_field:
            return [rows], lambda r: Cell(rows=r[0], count=r[0])
        return [rows, sa.func.count(value)], lambda r: Cell(rows=r[0], count=r[1])
    if op == "sum":
        return [rows, sa.func.sum(value)], lambda r: Cell(rows=r[0], total=_number(r[1]))
    if op == "avg":
        return [rows, sa.func.count(value), sa.func.sum(value)], lambda r: Cell(
            rows=r[0], count=r[1], total=_number(r[2])
        )
    if op == "min":
        return [rows, sa.func.min(value)], lambda r: Cell(rows=r[0], low=_number(r[1]))
    if op == "max":
        return [rows, sa.func.max(value)], lambda r: Cell(rows=r[0], high=_number(r[1]))
    return [rows, sa.func.count(sa.distinct(value))], lambda r: Cell(rows=r[0], distinct=r[1])
