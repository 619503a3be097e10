"""`metrics:` in interlink.yaml: the model, its defaults, and one-line errors per mistake."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from interlink.config import (
    MetricConfig,
    MetricPeriod,
    check_metric_sources,
    parse_period_days,
)
from interlink.config._messages import errors_from_validation


class _File(BaseModel):
    """`metrics:` as interlink.yaml holds it, for the error messages of the real loader."""

    model_config = ConfigDict(extra="forbid")
    metrics: dict[str, MetricConfig]


def only_error(metric: dict[str, Any]) -> str:
    data = {"metrics": {"m": metric}}
    with pytest.raises(ValidationError) as info:
        _File.model_validate(data)
    errors = errors_from_validation(
        info.value, model=_File, data=data, file="interlink.yaml", locate=lambda path: 7
    )
    lines = [str(error) for error in errors]
    assert len(lines) == 1, lines
    line = lines[0]
    assert "\n" not in line and "pydantic" not in line and "Input should" not in line
    assert line.startswith("interlink.yaml:7: metrics.m")
    return line


BASE = {"source": "sql:orders", "time_field": "created_at"}


def test_defaults():
    metric = MetricConfig.model_validate(BASE)
    assert metric.op == "count" and metric.field is None and metric.group_by is None
    assert metric.period == MetricPeriod(days=30) and metric.period.describe() == "30d"
    assert metric.granularity == "day" and metric.timezone == "UTC" and metric.account is None
    assert metric.table == "orders" and metric.resource is None and metric.connection is None


def test_every_option():
    metric = MetricConfig.model_validate(
        {
            "source": "shop.orders",
            "time_field": "created_at",
            "op": "avg",
            "field": "total",
            "group_by": "currency",
            "period": {"from": "2026-11-01", "to": "2026-11-30"},
            "granularity": "week",
            "timezone": "Pacific/Auckland",
            "account": "acct_1001",
        }
    )
    assert metric.resource == "shop.orders" and metric.connection == "shop"
    assert metric.period.start == date(2026, 11, 1) and metric.period.end == date(2026, 11, 30)
    assert metric.period.describe() == "2026-11-01..2026-11-30"


@pytest.mark.parametrize(("written", "days"), [("7d", 7), ("90d", 90), (" 30d ", 30), (14, 14)])
def test_period_in_days(written, days):
    assert MetricConfig.model_validate({**BASE, "period": written}).period.days == days
    if isinstance(written, str):
        assert parse_period_days(written) == days


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"op": "sum"}, "metrics.m: op sum needs field: the column or field it aggregates"),
        (
            {"op": "median"},
            "metrics.m.op: expected one of count, sum, avg, min, max, count_distinct; got 'median'",
        ),
        ({"period": "month"}, "metrics.m.period: expected a number of days such as 7d"),
        ({"period": "0d"}, "metrics.m.period: expected a number of days such as 7d"),
        ({"period": {"from": "2026-11-30", "to": "2026-11-01"}}, "is before from (2026-11-30)"),
        ({"period": {"from": "2026-11-30"}}, "or both from and to (YYYY-MM-DD)"),
        ({"period": {"from": "1960-01-01", "to": "1960-01-02"}}, "from 1971 to 2999"),
        ({"period": {"days": 7, "from": "2026-01-01"}}, "not both"),
        (
            {"granularity": "hour"},
            "metrics.m.granularity: expected one of day, week, month; got 'hour'",
        ),
        ({"timezone": "Mars/Olympus"}, "expected an IANA time zone such as UTC, Europe/Berlin"),
        ({"source": "orders"}, "expected sql:TABLE or a resource as connection.name"),
        ({"source": "sql:1orders"}, "table name of letters, digits and '_'"),
        ({"source": "sql:interlink_runs"}, "one of interlink's or the database's own tables"),
        ({"source": "sql:t_{account}_{account}"}, "may appear once in a table name"),
        ({"source": "sql:orders_{account}"}, "names {account}: set account:"),
        ({"account": "acct_1"}, "account applies to a table that names {account}"),
        ({"account": "bad account"}, "metrics.m.account: expected an account name"),
        ({"group_by": ""}, "metrics.m.group_by: expected a column or field name"),
        ({"colour": "red"}, "metrics.m: unknown key 'colour'"),
    ],
)
def test_one_line_per_mistake(change, expected):
    assert expected in only_error({**BASE, **change})


def test_sql_source_with_an_account():
    metric = MetricConfig.model_validate(
        {**BASE, "source": "sql:orders_{account}", "account": "acct_1001"}
    )
    assert metric.table == "orders_{account}"


def test_references_are_checked_against_the_file():
    metrics = {
        "live": MetricConfig.model_validate({**BASE, "source": "shop.orders"}),
        "table": MetricConfig.model_validate(BASE),
    }
    check_metric_sources(metrics, resource_names=["shop.orders"], auth_types={"shop": "bearer"})
    with pytest.raises(ValueError, match=r"^metrics.live.source: no resource named 'shop.ordrs'"):
        check_metric_sources(
            {"live": MetricConfig.model_validate({**BASE, "source": "shop.ordrs"})},
            resource_names=["shop.orders"],
            auth_types={"shop": "bearer"},
        )
    with_account = MetricConfig.model_validate(
        {**BASE, "source": "shop.orders", "account": "acct_1"}
    )
    with pytest.raises(ValueError, match=r"^metrics.a.account: only an oauth2 connection"):
        check_metric_sources(
            {"a": with_account}, resource_names=["shop.orders"], auth_types={"shop": "bearer"}
        )
    check_metric_sources(
        {"a": with_account}, resource_names=["shop.orders"], auth_types={"shop": "oauth2"}
    )
    with pytest.raises(ValueError, match=r"^metrics.bad name: metric names are letters"):
        check_metric_sources({"bad name": metrics["table"]}, resource_names=[], auth_types={})
