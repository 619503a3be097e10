"""`interlink metrics list | show`: the metrics of interlink.yaml, and one computed for a
period as a table and a small chart, or as JSON or CSV."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer

from interlink.cli._options import ConfigOption, load_settings

if TYPE_CHECKING:
    from interlink.metrics import MetricResult

__all__ = ["register"]

metrics_app = typer.Typer(
    help="Metrics of interlink.yaml: list them, show one for a period.",
    no_args_is_help=True,
)


def _date(value: str | None, option: str) -> date | None:
    from interlink.errors import ConfigError

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"expected a date as YYYY-MM-DD; got {value!r}", key=option) from None


@metrics_app.command("list")
def list_metrics(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Each metric: its source, op, granularity and group, period and time zone."""
    from interlink.metrics import describe_metric, metrics_of

    settings = load_settings(ctx, config)
    described = [describe_metric(name, m) for name, m in metrics_of(settings).items()]
    if as_json:
        import orjson

        typer.echo(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode())
        return
    from interlink.cli._render_metrics import show_metrics

    show_metrics(described)


@metrics_app.command("show")
def show_metric(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A metric of interlink.yaml.")],
    start: Annotated[
        str | None, typer.Option("--from", metavar="YYYY-MM-DD", help="First local date.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", metavar="YYYY-MM-DD", help="Last local date.")
    ] = None,
    period: Annotated[
        str | None, typer.Option("--period", metavar="Nd", help="7d, 30d, 90d: N days.")
    ] = None,
    granularity: Annotated[
        str | None, typer.Option("--granularity", "-g", help="day, week or month.")
    ] = None,
    group_by: Annotated[
        str | None, typer.Option("--group-by", metavar="FIELD", help="A column or field.")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or csv.")] = "table",
    config: ConfigOption = None,
) -> None:
    """Compute a metric for its period (or the one given) and print it."""
    import asyncio

    from interlink.errors import ConfigError
    from interlink.metrics import MetricRequest, compute_metric
    from interlink.store import Store

    if output not in ("table", "json", "csv"):
        raise ConfigError(f"expected table, json or csv; got {output!r}", key="--output")
    request = MetricRequest(
        start=_date(start, "--from"),
        end=_date(end, "--to"),
        period=period,
        granularity=granularity,
        group_by=group_by,
    )
    settings = load_settings(ctx, config)
    store = Store.open(settings.database)
    try:
        try:
            result = asyncio.run(compute_metric(settings, store, name, request))
        except ConfigError as error:
            # A request's own problem names its option, as the user wrote it.
            if error.key in ("from", "to", "period", "granularity", "group_by"):
                raise ConfigError(error.message, key="--" + error.key.replace("_", "-")) from None
            raise
    finally:
        store.close()
    _print(result, output)


def _print(result: MetricResult, output: str) -> None:
    data: dict[str, Any] = result.to_dict()
    if output == "json":
        import orjson

        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    elif output == "csv":
        import csv
        import io

        header, rows = result.table_rows()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
        typer.echo(buffer.getvalue(), nl=False)
    else:
        from interlink.cli._render_metrics import show_metric as draw

        draw(data)


def register(app: typer.Typer) -> None:
    """Add the `metrics` command group to `app`."""
    app.add_typer(metrics_app, name="metrics")
