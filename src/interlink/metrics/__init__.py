"""Metrics: aggregates of synced tables or live resources per local day, week or month.

```python
from interlink.metrics import MetricRequest, compute_metric

result = await compute_metric(config, store, "orders_per_day", MetricRequest(period="7d"))
result.to_dict()   # labels, series per group, totals, fields, previous/next (_result)
```

An `sql:` metric is aggregated inside SQLite or PostgreSQL (`_sql`, `_sql_expr`); a
resource is read live and aggregated as it streams (`_live`). Both place rows by the same
rules (`_values`, `_zone`, `_buckets`) and combine them the same way (`_tally`), so they
agree on the same records. docs/metrics.md has the configuration and the result shape.
"""

from ._buckets import Bucket, BucketPlan, plan_buckets
from ._compute import compute_metric, describe_metric, metric_named, metrics_of
from ._period import MetricRequest, Period, resolve_period
from ._result import MetricResult
from ._sql import metric_table, table_columns
from ._tally import MAX_GROUPS, Cell, Reading, Series, Summary, summarize
from ._values import group_text, number, wall_seconds
from ._zone import OffsetSpans, offset_spans

__all__ = [
    "MAX_GROUPS",
    "Bucket",
    "BucketPlan",
    "Cell",
    "MetricRequest",
    "MetricResult",
    "OffsetSpans",
    "Period",
    "Reading",
    "Series",
    "Summary",
    "compute_metric",
    "describe_metric",
    "group_text",
    "metric_named",
    "metric_table",
    "metrics_of",
    "number",
    "offset_spans",
    "plan_buckets",
    "resolve_period",
    "summarize",
    "table_columns",
    "wall_seconds",
]
