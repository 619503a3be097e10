"""A metric's result: one JSON shape for the API, the CLI and charts.

```json
{
  "metric": "orders_per_day", "source": "sql:orders", "live": false,
  "op": "count", "field": null, "group_by": "status",
  "granularity": "day", "timezone": "Europe/Berlin",
  "from": "2026-03-28", "to": "2026-03-30",
  "requested": {"from": "2026-03-28", "to": "2026-03-30"},
  "labels": ["2026-03-28", "2026-03-29", "2026-03-30"],
  "buckets": [{"label": "2026-03-29", "from": "2026-03-29", "to": "2026-03-29",
               "start": "2026-03-28T23:00:00Z", "end": "2026-03-29T22:00:00Z"}, ...],
  "series": [{"group": "paid", "kind": "value", "label": "paid",
              "values": [3, 0, 5], "total": 8}, ...],
  "totals": [4, 1, 6], "total": 11, "rows": 11,
  "groups": ["paid", "new", null], "other_groups": 0,
  "fields": ["id", "status", "created_at", "total"],
  "previous": {"from": "2026-03-25", "to": "2026-03-27"},
  "next": null
}
```

- `labels`: every bucket, empty ones included (the guide's `labelX`); `buckets` adds each
  one's local dates and UTC start and end (a DST day is 23 or 25 hours long).
- `series`: one per group, for stacked charts (the guide's `labelZ`). `kind` is `value`,
  `null` (rows whose group_by is null or missing, `group` null, labelled `(null)`),
  `other` (the groups beyond the cap, `group` null, labelled `other (N)`), or `all` (a
  metric without group_by: one series). An empty bucket is 0 for count, sum and
  count_distinct, and null for avg, min and max (there is no average of nothing).
- `totals`: per bucket over all groups (the guide's `labelY`); `total` over the period.
  For avg, min, max and count_distinct these are computed over the rows, never summed
  from the series.
- `groups`: the groups with a series, in series order; `other_groups`: how many were
  folded into `other`. `fields`: what group_by may name (the guide's `keys`).
- `from`/`to`: the dates the buckets cover (whole weeks or months for those
  granularities); `requested`: the dates asked for; `previous`/`next`: the period of the
  same length before and after `requested` (`next` null while it would start after today).
- Floats are rounded to 12 significant digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from interlink.config import MetricConfig

from ._buckets import BucketPlan
from ._period import Period
from ._tally import Summary

__all__ = ["MetricResult"]


def _dates(period: Period | None) -> dict[str, str] | None:
    if period is None:
        return None
    return {"from": period.start.isoformat(), "to": period.end.isoformat()}


@dataclass(frozen=True)
class MetricResult:
    """A computed metric; `to_dict()` is the documented JSON shape."""

    name: str
    metric: MetricConfig
    group_by: str | None
    plan: BucketPlan
    summary: Summary
    fields: list[str]
    previous: Period
    next: Period | None

    def to_dict(self) -> dict[str, Any]:
        plan, summary = self.plan, self.summary
        return {
            "metric": self.name,
            "source": self.metric.source,
            "live": self.metric.resource is not None,
            "op": self.metric.op,
            "field": self.metric.field,
            "group_by": self.group_by,
            "granularity": plan.granularity,
            "timezone": plan.timezone,
            "from": plan.first.isoformat(),
            "to": plan.last.isoformat(),
            "requested": _dates(plan.period),
            "labels": plan.labels,
            "buckets": [
                {
                    "label": bucket.label,
                    "from": bucket.first.isoformat(),
                    "to": bucket.last.isoformat(),
                    "start": bucket.iso_start(),
                    "end": bucket.iso_end(),
                }
                for bucket in plan.buckets
            ],
            "series": [
                {
                    "group": series.group,
                    "kind": series.kind,
                    "label": series.label,
                    "values": series.values,
                    "total": series.total,
                }
                for series in summary.series
            ],
            "totals": summary.totals,
            "total": summary.total,
            "rows": summary.rows,
            "groups": summary.groups,
            "other_groups": summary.other_groups,
            "fields": self.fields,
            "previous": _dates(self.previous),
            "next": _dates(self.next),
        }

    def table_rows(self) -> tuple[list[str], list[list[Any]]]:
        """A header and one row per bucket: label, total, then each series' value (the
        CSV of `interlink metrics show --output csv`)."""
        summary = self.summary
        header = ["bucket", "start", "end", "total"]
        grouped = self.group_by is not None
        if grouped:
            header += [series.label for series in summary.series]
        rows: list[list[Any]] = []
        for index, bucket in enumerate(self.plan.buckets):
            row: list[Any] = [
                bucket.label,
                bucket.iso_start(),
                bucket.iso_end(),
                summary.totals[index],
            ]
            if grouped:
                row += [series.values[index] for series in summary.series]
            rows.append(row)
        return header, rows
