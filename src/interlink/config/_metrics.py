"""Pydantic models of `metrics:`: what to count, sum or average, per day, week or month.

```yaml
metrics:
  orders_per_day:
    source: sql:orders             # a table of the configured database (a pipeline's)
    time_field: created_at
    op: count                      # count | sum | avg | min | max | count_distinct
    group_by: status
    period: 30d                    # the last 30 days, today included
    granularity: day               # day | week | month
    timezone: Europe/Berlin        # whose days; default UTC
  revenue:
    source: shop.orders            # a resource, read live for the period
    time_field: created_at
    op: sum
    field: total
    group_by: currency
    period: {from: 2026-11-01, to: 2026-11-30}
    granularity: week
```

The models check each metric on its own; `check_metric_sources` checks what a metric names
elsewhere in the file (its resource, the connection of its account).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._pipelines import ACCOUNT_NAME, ACCOUNT_PLACEHOLDER, is_reserved_table

__all__ = [
    "GRANULARITIES",
    "MAX_PERIOD_DAYS",
    "METRIC_NAME",
    "METRIC_OPS",
    "MetricConfig",
    "MetricPeriod",
    "MetricSources",
    "check_metric_sources",
    "parse_period_days",
]

METRIC_OPS = ["count", "sum", "avg", "min", "max", "count_distinct"]
GRANULARITIES = ["day", "week", "month"]
METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
"""What a metric may be called: it is a path segment of `/api/v1/metrics/{name}`."""
MAX_PERIOD_DAYS = 3660
"""The longest period a metric covers (ten years and a bit)."""

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DAYS = re.compile(r"^\s*(\d{1,5})\s*d\s*$")
# A column or field name: any printable text (SQL names are quoted, never spliced in).
_FIELD = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
# Dates before 1971 or after 2999 are refused: epoch values in milliseconds are told
# from seconds by their size (above 1e11), which holds for instants in those years.
_FIRST_YEAR, _LAST_YEAR = 1971, 2999


def parse_period_days(text: str) -> int:
    """The N of a period written `Nd` (`30d`); ValueError naming what was expected."""
    found = _DAYS.match(text)
    days = int(found.group(1)) if found else 0
    if not found or not 1 <= days <= MAX_PERIOD_DAYS:
        raise ValueError(
            f"expected a number of days such as 7d, 30d or 90d (1d to {MAX_PERIOD_DAYS}d), "
            f"or {{from: YYYY-MM-DD, to: YYYY-MM-DD}}; got {text!r}"
        )
    return days


def _check_year(value: date, key: str) -> date:
    if not _FIRST_YEAR <= value.year <= _LAST_YEAR:
        raise ValueError(
            f"{key}: expected a date from {_FIRST_YEAR} to {_LAST_YEAR}; got {value.isoformat()!r}"
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MetricPeriod(_Model):
    """The days a metric covers: the last `days` days up to and including today in the
    metric's time zone, or the local dates `from` to `to`, both included."""

    days: int | None = None
    start: date | None = Field(None, alias="from")
    end: date | None = Field(None, alias="to")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"days": parse_period_days(value)}
        if isinstance(value, int) and not isinstance(value, bool):
            return {"days": parse_period_days(f"{value}d")}
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_PERIOD_DAYS:
            raise ValueError(f"expected 1 to {MAX_PERIOD_DAYS} days; got {value}")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> MetricPeriod:
        dated = self.start is not None or self.end is not None
        if self.days is not None and dated:
            raise ValueError("expected either a number of days (30d) or from/to, not both")
        if self.days is None and (self.start is None or self.end is None):
            raise ValueError(
                "expected a number of days such as 30d, or both from and to (YYYY-MM-DD)"
            )
        if self.start is not None and self.end is not None:
            _check_year(self.start, "from")
            _check_year(self.end, "to")
            if self.end < self.start:
                raise ValueError(
                    f"to ({self.end.isoformat()}) is before from ({self.start.isoformat()})"
                )
            if (self.end - self.start).days + 1 > MAX_PERIOD_DAYS:
                raise ValueError(f"a period covers at most {MAX_PERIOD_DAYS} days")
        return self

    def describe(self) -> str:
        """`30d`, or `2026-11-01..2026-11-30`."""
        if self.days is not None:
            return f"{self.days}d"
        assert self.start is not None and self.end is not None
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


class MetricConfig(_Model):
    """One metric: an aggregate of a table's rows or a resource's records over a period,
    per local day, ISO week or month, optionally one series per value of `group_by`."""

    source: str
    """`sql:TABLE` (a table of the configured database; `{account}` as in pipelines) or
    `CONNECTION.RESOURCE`, read live for the period."""
    time_field: str
    """The column or field that places a row in time: epoch seconds or milliseconds,
    ISO-8601 text, or a timestamp column."""
    op: Literal["count", "sum", "avg", "min", "max", "count_distinct"] = "count"
    field: str | None = None
    """What `op` aggregates; every op but `count` needs it (`count` with a field counts
    the rows where it is not null)."""
    group_by: str | None = None
    period: MetricPeriod = MetricPeriod(days=30)
    granularity: Literal["day", "week", "month"] = "day"
    timezone: str = "UTC"
    """An IANA time zone (`Europe/Berlin`): a day is that zone's day."""
    account: str | None = None
    """The connected account of the source's `oauth2` connection (live), or the account
    whose table `{account}` names (sql)."""

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        text = value.strip()
        if text.startswith("sql:"):
            table = text[4:].strip()
            if not _TABLE.match(table.replace(ACCOUNT_PLACEHOLDER, "a")):
                raise ValueError(
                    "expected sql:TABLE with a table name of letters, digits and '_', "
                    f"starting with a letter; got {value!r}"
                )
            if table.count(ACCOUNT_PLACEHOLDER) > 1:
                raise ValueError(f"{ACCOUNT_PLACEHOLDER} may appear once in a table name")
            if is_reserved_table(table):
                raise ValueError(
                    f"{table!r} is one of interlink's or the database's own tables; a metric "
                    "reads a table a pipeline writes"
                )
            return f"sql:{table}"
        connection, dot, resource = text.partition(".")
        if not dot or not connection or not resource:
            raise ValueError(f"expected sql:TABLE or a resource as connection.name; got {value!r}")
        return text

    @field_validator("time_field", "field", "group_by")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _FIELD.match(value):
            raise ValueError(
                f"expected a column or field name (1 to 200 printable characters); got {value!r}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "expected an IANA time zone such as UTC, Europe/Berlin or "
                f"America/Los_Angeles; got {value!r}"
            ) from None
        return value

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is None or ACCOUNT_NAME.fullmatch(value):
            return value
        raise ValueError(
            f"expected an account name (letters, digits and _ . @ + -, at most 200); got {value!r}"
        )

    @model_validator(mode="after")
    def _coherent(self) -> MetricConfig:
        if self.op != "count" and self.field is None:
            raise ValueError(f"op {self.op} needs field: the column or field it aggregates")
        table = self.table
        if table is not None and ACCOUNT_PLACEHOLDER in table and self.account is None:
            raise ValueError(
                f"the table {table!r} names {ACCOUNT_PLACEHOLDER}: set account: to the "
                "connected account whose table the metric reads"
            )
        if table is not None and self.account is not None and ACCOUNT_PLACEHOLDER not in table:
            raise ValueError(
                f"account applies to a table that names {ACCOUNT_PLACEHOLDER} or to a "
                f"resource read live; {table!r} does not name it"
            )
        return self

    @property
    def table(self) -> str | None:
        """The table of an `sql:` source as written (`{account}` not yet replaced)."""
        return self.source[4:] if self.source.startswith("sql:") else None

    @property
    def resource(self) -> str | None:
        """The `connection.resource` of a live source."""
        return None if self.source.startswith("sql:") else self.source

    @property
    def connection(self) -> str | None:
        resource = self.resource
        return resource.partition(".")[0] if resource is not None else None


MetricSources = dict[str, MetricConfig]
"""The `metrics:` mapping: metric name -> config."""


def check_metric_sources(
    metrics: Mapping[str, MetricConfig],
    *,
    resource_names: Iterable[str],
    auth_types: Mapping[str, str],
) -> None:
    """Check what each metric names elsewhere in interlink.yaml: a valid name, a resource
    that exists, and an `account` only on an `oauth2` connection. `auth_types` maps each
    connection to its `auth.type`. Raises ValueError("metrics.NAME.KEY: ...")."""
    known = sorted(resource_names)
    for name, metric in metrics.items():
        if not METRIC_NAME.match(name):
            raise ValueError(
                f"metrics.{name}: metric names are letters, digits, '_' and '-' "
                "(at most 100), starting with a letter or '_'"
            )
        resource = metric.resource
        if resource is None:
            continue
        if resource not in known:
            raise ValueError(
                f"metrics.{name}.source: no resource named {resource!r} "
                f"(resources: {', '.join(known) or 'none defined'})"
            )
        connection = metric.connection or ""
        auth = auth_types.get(connection, "none")
        if metric.account is not None and auth != "oauth2":
            raise ValueError(
                f"metrics.{name}.account: only an oauth2 connection has connected accounts, "
                f"and {resource} is read through {connection!r} (auth: {auth})"
            )
