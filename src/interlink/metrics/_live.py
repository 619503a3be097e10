"""The live path: a metric over a resource, read for the period and aggregated as it streams.

Pages are read one after another through the connection's catalog (its auth, rate limit
and retries; the metric's `account` chooses whose tokens), and each record is placed and
counted as its page arrives: memory holds the cells, not the records (count_distinct keeps
the distinct values it has seen).

When the resource reads incrementally by a query parameter (`incremental: {field, param}`)
and its incremental field is the metric's `time_field`, the read starts at the period:
`since` is the first bucket's start less two days, sent as ISO-8601 UTC
(`2026-03-01T00:00:00Z`), or as epoch seconds when the resource's `incremental.initial` is
a number. Otherwise the whole resource is read and records outside the period are
skipped. Either way every record is placed by the rules of `_values`, the same as the SQL
path's, so both give the same result for the same records.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from interlink.config import InterlinkConfig, MetricConfig
from interlink.connectors import MISSING, Catalog, compile_selector
from interlink.errors import ConfigError

from ._buckets import MARGIN, BucketPlan
from ._tally import Cell, GroupKey, Reading
from ._values import distinct_key, epoch_seconds, group_text, number, wall_seconds
from ._zone import OffsetSpans

__all__ = ["live_reading", "local_seconds_of"]

CatalogFactory = Callable[[dict[str, str]], Catalog]


def local_seconds_of(value: Any, spans: OffsetSpans) -> int | None:
    """The local seconds of a time value, or None when it is not a time."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return spans.local(epoch_seconds(value))
    if isinstance(value, str):
        parsed = wall_seconds(value)
        if parsed is None:
            return None
        wall, offset = parsed
        return wall if offset is None else spans.local(wall - offset)
    return None


class _LiveDistinct:
    """count_distinct's totals from the distinct values kept per group and bucket."""

    def __init__(self, seen: dict[tuple[GroupKey, int], set[Any]]) -> None:
        self.seen = seen

    def over(self, excluding: frozenset[GroupKey] | None) -> tuple[dict[int, int], int]:
        per_bucket: dict[int, set[Any]] = {}
        everything: set[Any] = set()
        for (group, bucket), values in self.seen.items():
            if excluding is not None and group in excluding:
                continue
            per_bucket.setdefault(bucket, set()).update(values)
            everything.update(values)
        return {b: len(v) for b, v in per_bucket.items()}, len(everything)

    def per_group(self) -> dict[GroupKey, int]:
        groups: dict[GroupKey, set[Any]] = {}
        for (group, _), values in self.seen.items():
            groups.setdefault(group, set()).update(values)
        return {g: len(v) for g, v in groups.items()}


def _since(resource_config: Any, metric: MetricConfig, plan: BucketPlan) -> Any:
    incremental = getattr(resource_config, "incremental", None)
    if incremental is None or not incremental.param or incremental.field != metric.time_field:
        return None
    start = plan.buckets[0].start - MARGIN
    if isinstance(incremental.initial, int | float) and not isinstance(incremental.initial, bool):
        return start
    return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def live_reading(
    config: InterlinkConfig,
    catalogs: CatalogFactory,
    name: str,
    metric: MetricConfig,
    plan: BucketPlan,
    group_by: str | None,
    *,
    group_key: str,
) -> Reading:
    """Cells per (group, bucket) of a metric over a live resource. `catalogs` opens a
    catalog acting for the accounts it is given (connection -> account)."""
    resource_name = metric.resource
    assert resource_name is not None
    try:
        connection, _, resource_config = config.resource(resource_name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0]), key=f"metrics.{name}.source") from None
    accounts = {connection: metric.account} if metric.account else {}
    when = compile_selector(metric.time_field)
    of_group = compile_selector(group_by) if group_by is not None else None
    of_value = compile_selector(metric.field) if metric.field is not None else None
    op = metric.op
    spans = plan.spans
    cells: dict[tuple[GroupKey, int], Cell] = {}
    seen: dict[tuple[GroupKey, int], set[Any]] = {}
    fields: dict[str, None] = {}
    since = _since(resource_config, metric, plan)
    async with catalogs(accounts) as catalog:
        resource = catalog.resource(resource_name)
        async for page in resource.pages(since=since):
            for record in page.records:
                if isinstance(record, dict):
                    for field in record:
                        if field not in fields:
                            fields[field] = None
                local = local_seconds_of(when(record), spans)
                if local is None:
                    continue
                bucket = plan.bucket_of(local)
                if bucket is None:
                    continue
                group: GroupKey = None
                if of_group is not None:
                    raw_group = of_group(record)
                    group = None if raw_group is MISSING else group_text(raw_group)
                cell = cells.get((group, bucket))
                if cell is None:
                    cell = cells[(group, bucket)] = Cell()
                cell.rows += 1
                if of_value is None:
                    cell.count += 1
                    continue
                raw = of_value(record)
                if raw is MISSING or raw is None:
                    continue
                if op == "count":
                    cell.count += 1
                elif op == "count_distinct":
                    seen.setdefault((group, bucket), set()).add(distinct_key(raw))
                else:
                    value = number(raw)
                    if value is None:
                        continue
                    cell.count += 1
                    cell.total = value if cell.total is None else cell.total + value
                    if cell.low is None or value < cell.low:
                        cell.low = value
                    if cell.high is None or value > cell.high:
                        cell.high = value
    for key, values in seen.items():
        cells[key].distinct = len(values)
    if group_by is not None and fields and group_by.split(".")[0] not in fields:
        shown = ", ".join(list(fields)[:30])
        raise ConfigError(
            f"no field {group_by!r} in the records of {resource_name} (fields: {shown})",
            key=group_key,
        )
    counter = _LiveDistinct(seen) if op == "count_distinct" else None
    return Reading(cells, list(fields), counter)
