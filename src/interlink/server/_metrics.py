"""`/metrics`: the metrics of interlink.yaml, and one computed for a period.

`GET /metrics/{name}?from=&to=&period=&granularity=&group_by=` answers the result shape of
`interlink.metrics` (docs/metrics.md). A request's mistakes are 422s naming the parameter
(`group_by` must name a column of the table, or a field of the records, before anything
is aggregated by it); a metric that cannot be computed now (its table not written yet, its
connection switched off) is a 409; a failing source API a 502.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from interlink.errors import ConfigError, ConnectionDisabledError, InterlinkError
from interlink.metrics import MetricRequest, compute_metric, describe_metric, metrics_of

from ._context import Context, known_query_only
from ._envelope import success
from ._errors import ApiProblem, invalid_field, not_found
from ._models import NAME_PATTERN, Envelope

__all__ = ["MetricOut", "MetricResultOut", "router"]

router = APIRouter(tags=["metrics"], dependencies=[Depends(known_query_only)])

Number = int | float
_PARAMETERS = ("from", "to", "period", "granularity", "group_by")


class MetricOut(BaseModel):
    name: str
    source: str = Field(description="`sql:TABLE`, or `connection.resource` read live.")
    live: bool
    time_field: str
    op: Literal["count", "sum", "avg", "min", "max", "count_distinct"]
    field: str | None
    group_by: str | None
    period: str = Field(description="`30d` (the last 30 days), or `FROM..TO`.")
    granularity: Literal["day", "week", "month"]
    timezone: str
    account: str | None


class Dates(BaseModel):
    from_: date = Field(alias="from")
    to: date


class BucketOut(BaseModel):
    label: str
    from_: date = Field(alias="from")
    to: date
    start: str = Field(description="Where the bucket's first local day starts, UTC.")
    end: str = Field(description="Where the day after its last one starts, UTC.")


class SeriesOut(BaseModel):
    group: str | None = Field(description="The group's value as text; null for null/other.")
    kind: Literal["all", "value", "null", "other"]
    label: str
    values: list[Number | None]
    total: Number | None


class MetricResultOut(BaseModel):
    metric: str
    source: str
    live: bool
    op: str
    field: str | None
    group_by: str | None
    granularity: str
    timezone: str
    from_: date = Field(alias="from", description="The first day of the first bucket.")
    to: date = Field(description="The last day of the last bucket.")
    requested: Dates
    labels: list[str] = Field(description="Every bucket's label (the guide's labelX).")
    buckets: list[BucketOut]
    series: list[SeriesOut] = Field(description="One per group, stacked (labelZ).")
    totals: list[Number | None] = Field(description="Per bucket, all groups (labelY).")
    total: Number | None
    rows: int
    groups: list[str | None]
    other_groups: int
    fields: list[str] = Field(description="What group_by may name (the guide's keys).")
    previous: Dates
    next: Dates | None


@router.get("/metrics", response_model=Envelope[list[MetricOut]], summary="Metrics")
def list_metrics(request: Request, ctx: Context) -> dict[str, object]:
    data = [describe_metric(name, metric) for name, metric in metrics_of(ctx.config).items()]
    return success(request.scope, data)


@router.get(
    "/metrics/{name}",
    response_model=Envelope[MetricResultOut],
    response_model_by_alias=True,
    summary="One metric for a period: labels, series per group, totals",
)
async def get_metric(
    request: Request,
    ctx: Context,
    name: Annotated[str, Path(max_length=100, pattern=NAME_PATTERN)],
    start: Annotated[
        date | None, Query(alias="from", description="First local date (YYYY-MM-DD).")
    ] = None,
    end: Annotated[date | None, Query(alias="to", description="Last local date.")] = None,
    period: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,5}d$", description="`7d`, `30d`, `90d`...")
    ] = None,
    granularity: Literal["day", "week", "month"] | None = None,
    group_by: Annotated[
        str | None, Query(min_length=1, max_length=200, description="A column or field.")
    ] = None,
) -> dict[str, object]:
    if name not in metrics_of(ctx.config):
        raise not_found(f"Metric {name!r}")
    asked = MetricRequest(
        start=start, end=end, period=period, granularity=granularity, group_by=group_by
    )
    try:
        result = await compute_metric(ctx.config, ctx.store, name, asked)
    except ConfigError as error:
        if error.key in _PARAMETERS:
            raise invalid_field(error.key or "", error.message) from None
        raise ApiProblem(409, str(error), code="METRIC_UNAVAILABLE") from None
    except ConnectionDisabledError as error:
        raise ApiProblem(409, str(error), code=error.code) from None
    except InterlinkError as error:
        raise ApiProblem(
            502, f"The metric's source failed: {error}", code="UPSTREAM_ERROR"
        ) from None
    return success(request.scope, result.to_dict())
