"""`compute_metric`: a metric of interlink.yaml, for a period, as a `MetricResult`.

```python
result = await compute_metric(config, store, "orders_per_day")
result = await compute_metric(
    config, store, "orders_per_day", MetricRequest(period="7d", granularity="day")
)
print(result.to_dict()["totals"])
```

An `sql:` source is aggregated by the database (`_sql`, in a worker thread); a resource
is read live (`_live`). A request's problems (a bad `from`, a `group_by` that names no
column) are ConfigErrors whose key is the request's parameter (`from`, `group_by`); the
metric's own problems name `metrics.NAME...`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from interlink.config import GRANULARITIES, InterlinkConfig, MetricConfig
from interlink.errors import ConfigError
from interlink.store import Store

from ._buckets import plan_buckets
from ._period import MetricRequest, resolve_period
from ._result import MetricResult
from ._sql import sql_reading
from ._tally import Reading, summarize

if TYPE_CHECKING:
    from interlink.connectors import Catalog

__all__ = ["compute_metric", "describe_metric", "metric_named", "metrics_of"]


def metrics_of(config: InterlinkConfig) -> Mapping[str, MetricConfig]:
    """The `metrics:` of interlink.yaml."""
    return config.metrics


def metric_named(config: InterlinkConfig, name: str) -> MetricConfig:
    """The metric `name`; ConfigError naming the metrics there are."""
    metrics = metrics_of(config)
    found = metrics.get(name)
    if found is None:
        known = ", ".join(sorted(metrics)) or "none defined"
        raise ConfigError(f"no metric named {name!r} (metrics: {known})", key="metrics")
    return found


def describe_metric(name: str, metric: MetricConfig) -> dict[str, Any]:
    """A metric's definition as the API and `interlink metrics list` show it."""
    return {
        "name": name,
        "source": metric.source,
        "live": metric.resource is not None,
        "time_field": metric.time_field,
        "op": metric.op,
        "field": metric.field,
        "group_by": metric.group_by,
        "period": metric.period.describe(),
        "granularity": metric.granularity,
        "timezone": metric.timezone,
        "account": metric.account,
    }


async def compute_metric(
    config: InterlinkConfig,
    store: Store,
    name: str,
    request: MetricRequest | None = None,
    *,
    today: date | None = None,
    catalogs: Callable[[dict[str, str]], Catalog] | None = None,
) -> MetricResult:
    """Compute metric `name` of `config` for `request` (default: as configured).

    `today` is the date in the metric's zone that "the last N days" end at (default: the
    clock's). `catalogs` opens the catalog a live metric reads through, for the accounts it
    is given (default: `interlink.oauth.open_catalog` on `store`, the vault's tokens).
    """
    metric = metric_named(config, name)
    request = request or MetricRequest()
    if today is None:
        today = datetime.now(ZoneInfo(metric.timezone)).date()
    period = resolve_period(metric, request, today)
    granularity = request.granularity or metric.granularity
    if granularity not in GRANULARITIES:
        raise ConfigError(
            f"expected one of {', '.join(GRANULARITIES)}; got {granularity!r}",
            key="granularity",
        )
    if request.no_group:
        group_by, group_key = None, "group_by"
    elif request.group_by is not None:
        group_by, group_key = request.group_by, "group_by"
    else:
        group_by, group_key = metric.group_by, f"metrics.{name}.group_by"
    plan = plan_buckets(period, granularity, metric.timezone)
    reading: Reading
    if metric.table is not None:
        reading = await asyncio.to_thread(
            sql_reading, store.engine, name, metric, plan, group_by, group_key=group_key
        )
    else:
        # Imported here: a table's metric needs no HTTP stack (`interlink metrics show`
        # starts faster without it).
        from ._live import live_reading

        if catalogs is None:
            from interlink.oauth import open_catalog

            def catalogs(accounts: dict[str, str]) -> Catalog:
                return open_catalog(config, store, accounts=accounts)

        reading = await live_reading(
            config, catalogs, name, metric, plan, group_by, group_key=group_key
        )
    summary = await asyncio.to_thread(
        summarize,
        metric.op,
        reading.cells,
        len(plan.buckets),
        grouped=group_by is not None,
        counter=reading.counter,
    )
    return MetricResult(
        name=name,
        metric=metric,
        group_by=group_by,
        plan=plan,
        summary=summary,
        fields=reading.fields,
        previous=period.previous(),
        next=period.next(today),
    )
