"""From partial aggregates per (group, bucket) to series, totals and the group cap. Pure.

Both paths reduce their rows to `Cell`s, one per group and bucket: the rows, the values
counted, their sum, minimum and maximum, and (count_distinct) the distinct values. Sums,
counts, minima and maxima combine exactly, so the totals of count, sum, avg, min and max
(per bucket over all groups, per group over the period, the "other" group) are computed
here from the cells: an average's total is the sum of sums over the sum of counts, never
an average of averages. Distinct counts do not combine (a value may be in two groups or
two buckets); those totals come from a `DistinctCounter`, which counts again over the
rows (a query on the database, the kept sets on a live read).

At most `MAX_GROUPS` groups get a series of their own: for count and sum the groups with
the largest totals, for the other ops those with the most rows (ties by group text). The
rest are folded into one "other" series, so a chart has a bounded number of series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "MAX_GROUPS",
    "Cell",
    "Reading",
    "DistinctCounter",
    "GroupKey",
    "Number",
    "Series",
    "Summary",
    "summarize",
    "tidy",
]

MAX_GROUPS = 20
"""Series of their own at most; the rest are one "other" series."""

GroupKey = str | None
"""A group's text; None is the null group (and the one group of a metric without
group_by)."""
Number = int | float


@dataclass(slots=True)
class Cell:
    """Partial aggregates of the rows of one group in one bucket."""

    rows: int = 0
    count: int = 0
    """Values counted: rows (count without a field), or values that are not null."""
    total: Number | None = None
    low: Number | None = None
    high: Number | None = None
    distinct: int = 0
    """Distinct values (count_distinct); exact for this cell only."""

    def add(self, other: Cell) -> None:
        self.rows += other.rows
        self.count += other.count
        if other.total is not None:
            self.total = other.total if self.total is None else self.total + other.total
        if other.low is not None and (self.low is None or other.low < self.low):
            self.low = other.low
        if other.high is not None and (self.high is None or other.high > self.high):
            self.high = other.high
        self.distinct += other.distinct


class DistinctCounter(Protocol):
    """Counts distinct values again over the rows, for the totals cells cannot give."""

    def over(self, excluding: frozenset[GroupKey] | None) -> tuple[dict[int, int], int]:
        """Distinct values per bucket and over the whole period, of every row (None) or of
        the rows whose group is not in `excluding` (the "other" series)."""
        ...

    def per_group(self) -> dict[GroupKey, int]:
        """Distinct values of each group over the whole period."""
        ...


Kind = Literal["all", "value", "null", "other"]


@dataclass(frozen=True)
class Series:
    """One stacked series: a group's value per bucket and over the period."""

    group: str | None
    kind: Kind
    label: str
    values: list[Number | None]
    total: Number | None


@dataclass(frozen=True)
class Summary:
    series: list[Series]
    totals: list[Number | None]
    total: Number | None
    groups: list[str | None] = field(default_factory=list)
    other_groups: int = 0
    rows: int = 0


def tidy(value: Number | None) -> Number | None:
    """A result as shown: floats to 12 significant digits, so that the order rows were
    added in (which differs between SQLite, PostgreSQL and a live read) does not show."""
    if isinstance(value, float):
        value = float(f"{value:.12g}")
        return 0.0 if value == 0 else value
    return value


def _value(op: str, cell: Cell | None) -> Number | None:
    if cell is None:
        return None if op in ("avg", "min", "max") else 0
    if op == "count":
        return cell.count
    if op == "sum":
        return cell.total if cell.total is not None else 0
    if op == "avg":
        return cell.total / cell.count if cell.count and cell.total is not None else None
    if op == "min":
        return cell.low
    if op == "max":
        return cell.high
    return cell.distinct


def _combined(cells: Iterable[Cell]) -> Cell | None:
    merged: Cell | None = None
    for cell in cells:
        if merged is None:
            merged = Cell()
        merged.add(cell)
    return merged


def _rank(op: str, cell: Cell) -> Number:
    if op in ("count", "sum"):
        value = _value(op, cell)
        return value if value is not None else 0
    return cell.rows


def summarize(
    op: str,
    cells: Mapping[tuple[GroupKey, int], Cell],
    buckets: int,
    *,
    grouped: bool,
    counter: DistinctCounter | None = None,
    max_groups: int = MAX_GROUPS,
) -> Summary:
    """Series, totals per bucket, the total and the groups of a metric's cells."""
    by_group: dict[GroupKey, dict[int, Cell]] = {}
    for (group, bucket), cell in cells.items():
        by_group.setdefault(group, {})[bucket] = cell
    whole = {group: _combined(row.values()) or Cell() for group, row in by_group.items()}
    rows = sum(cell.rows for cell in whole.values())
    distinct = op == "count_distinct"
    if distinct and counter is None:
        raise TypeError("count_distinct needs a DistinctCounter")

    def bucket_values(row: Mapping[int, Cell]) -> list[Number | None]:
        return [tidy(_value(op, row.get(index))) for index in range(buckets)]

    if not grouped:
        values = bucket_values(by_group.get(None, {}))
        if distinct:
            assert counter is not None
            only_total: Number | None = counter.over(None)[1]
        else:
            only_total = tidy(_value(op, whole.get(None)))
        one = Series(None, "all", "all", values, only_total)
        return Summary([one], list(values), only_total, [], 0, rows)

    ranked = sorted(whole, key=lambda g: (-_rank(op, whole[g]), g is None, g or ""))
    top, rest = ranked[:max_groups], ranked[max_groups:]
    group_totals: dict[GroupKey, int] = {}
    if distinct:
        assert counter is not None
        group_totals = dict(counter.per_group())
    series: list[Series] = []
    for group in top:
        total: Number | None = (
            group_totals.get(group, 0) if distinct else tidy(_value(op, whole[group]))
        )
        kind: Kind = "null" if group is None else "value"
        label = "(null)" if group is None else group
        series.append(Series(group, kind, label, bucket_values(by_group[group]), total))
    if rest:
        other_label = f"other ({len(rest)})"
        if distinct:
            assert counter is not None
            per_bucket, other_total = counter.over(frozenset(top))
            other_values: list[Number | None] = [
                per_bucket.get(index, 0) for index in range(buckets)
            ]
            series.append(Series(None, "other", other_label, other_values, other_total))
        else:
            merged: dict[int, Cell] = {}
            for group in rest:
                for index, cell in by_group[group].items():
                    merged.setdefault(index, Cell()).add(cell)
            other = _combined(whole[group] for group in rest)
            series.append(
                Series(None, "other", other_label, bucket_values(merged), tidy(_value(op, other)))
            )
    grand: Number | None
    if distinct:
        assert counter is not None
        per_bucket, grand = counter.over(None)
        totals: list[Number | None] = [per_bucket.get(index, 0) for index in range(buckets)]
    else:
        columns: dict[int, Cell] = {}
        for row in by_group.values():
            for index, cell in row.items():
                columns.setdefault(index, Cell()).add(cell)
        totals = bucket_values(columns)
        grand = tidy(_value(op, _combined(whole.values())))
    return Summary(series, totals, grand, list(top), len(rest), rows)


@dataclass(frozen=True)
class Reading:
    """What a path read: the cells, the fields group_by may name, and (count_distinct
    with groups) how to count distinct values again."""

    cells: dict[tuple[GroupKey, int], Cell]
    fields: list[str]
    counter: DistinctCounter | None = None
