"""`/metrics` and `/metrics/{name}`: each metric as a chart (stacked bars or lines), for the
last 7, 30 or 90 days or the period before or after, with its numbers in a table.

```
GET /metrics?period=30d&chart=line          every metric, one chart each
GET /metrics/orders?from=2026-03-01&to=2026-03-30&chart=bar
```

Without a period the metric's own (interlink.yaml) is shown. A computation that fails
(its table not written yet, its connection switched off, its API down) says why in place
of its chart; the other metrics still show.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import Response

from interlink.errors import ConfigError, ConnectionDisabledError, InterlinkError
from interlink.metrics import MetricRequest, compute_metric, describe_metric
from interlink.server._context import Context, ServerContext

from ._charts import render_chart, render_table
from ._errors import Refused
from ._render import page
from ._session import SignedIn
from ._viewer import Viewer

__all__ = ["PERIODS", "router"]

router = APIRouter(include_in_schema=False)

PERIODS = ("7d", "30d", "90d")
CHARTS = ("bar", "line")


@dataclass(frozen=True)
class _Asked:
    """What the query string asks for, checked."""

    chart: Literal["bar", "line"] = "bar"
    period: str | None = None
    start: date | None = None
    end: date | None = None

    def request(self) -> MetricRequest:
        if self.start is not None or self.end is not None:
            return MetricRequest(start=self.start, end=self.end)
        return MetricRequest(period=self.period)

    def query(self, **changes: str | None) -> str:
        """This view's query string with `changes` (None drops a parameter)."""
        values: dict[str, str | None] = {
            "period": self.period,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "chart": self.chart,
        }
        values.update(changes)
        return urlencode({name: value for name, value in values.items() if value})


def _asked(request: Request, viewer: Viewer) -> _Asked:
    query = request.query_params
    unknown = sorted(set(query) - {"period", "from", "to", "chart"})
    if unknown:
        raise Refused(422, "Not understood", f"Unknown parameter {unknown[0]!r}.", viewer=viewer)
    chart = query.get("chart") or "bar"
    period = query.get("period") or None
    if chart not in CHARTS:
        raise Refused(422, "Not understood", "chart is bar or line.", viewer=viewer)
    if period is not None and period not in PERIODS:
        raise Refused(422, "Not understood", "period is 7d, 30d or 90d.", viewer=viewer)
    dates: dict[str, date | None] = {}
    for name in ("from", "to"):
        text = query.get(name)
        try:
            dates[name] = date.fromisoformat(text) if text else None
        except ValueError:
            raise Refused(
                422, "Not understood", f"{name} is a date: YYYY-MM-DD.", viewer=viewer
            ) from None
    return _Asked(
        chart="line" if chart == "line" else "bar",
        period=period,
        start=dates["from"],
        end=dates["to"],
    )


@dataclass
class _Shown:
    """One metric as a page shows it: its definition, and its chart or why there is none."""

    name: str
    definition: dict[str, Any]
    result: dict[str, Any] | None = None
    chart: Markup | None = None
    table: Markup | None = None
    error: str | None = None
    links: dict[str, str] = field(default_factory=dict)


async def _show(ctx: ServerContext, name: str, asked: _Asked) -> _Shown:
    shown = _Shown(name, describe_metric(name, ctx.config.metrics[name]))
    try:
        result = (await compute_metric(ctx.config, ctx.store, name, asked.request())).to_dict()
    except ConfigError as exc:
        shown.error = exc.message
        return shown
    except ConnectionDisabledError as exc:
        shown.error = str(exc)
        return shown
    except InterlinkError as exc:
        shown.error = f"The metric's source failed: {exc}"
        return shown
    shown.result = result
    # Both escape every text they take from the result (xml_text): the markup is theirs.
    shown.chart = Markup(render_chart(result, kind=asked.chart))  # nosec
    shown.table = Markup(render_table(result))  # nosec
    for step in ("previous", "next"):
        dates = result.get(step)
        if dates:
            shown.links[step] = asked.query(
                period=None, **{"from": dates["from"], "to": dates["to"]}
            )
    return shown


def _views(asked: _Asked, own: str | None = None) -> dict[str, Any]:
    """The links every metrics page has: the periods and the chart kinds. `own` is the
    period the page shows when none is asked for (one metric's `period`)."""
    current = asked.period
    if current is None and asked.start is None and asked.end is None:
        current = own
    return {
        "current": current,
        "periods": [
            (period, asked.query(period=period, **{"from": None, "to": None})) for period in PERIODS
        ],
        "charts": [(chart, asked.query(chart=chart)) for chart in CHARTS],
        "asked": asked,
    }


@router.get("/metrics")
async def metrics_page(request: Request, ctx: Context, viewer: SignedIn) -> Response:
    asked = _asked(request, viewer)
    shown = await asyncio.gather(*(_show(ctx, name, asked) for name in ctx.config.metrics))
    return page(
        request,
        "metrics.html",
        title="Metrics",
        viewer=viewer,
        nav="metrics",
        metrics=shown,
        **_views(asked),
    )


@router.get("/metrics/{name}")
async def metric_page(request: Request, ctx: Context, viewer: SignedIn, name: str) -> Response:
    if name not in ctx.config.metrics:
        raise Refused(404, "Not found", f"There is no metric {name!r}.", viewer=viewer)
    asked = _asked(request, viewer)
    shown = await _show(ctx, name, asked)
    return page(
        request,
        "metric.html",
        title=f"Metric {name}",
        viewer=viewer,
        nav="metrics",
        metric=shown,
        status=200 if shown.error is None else 409,
        **_views(asked, str(shown.definition["period"])),
    )
