"""`interlink read RESOURCE`: print a resource's records, for exploring an API."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from interlink.cli._options import (
    ConfigOption,
    RecordOption,
    ReplayOption,
    cassette_session,
    load_settings,
)

if TYPE_CHECKING:
    from interlink.config import InterlinkConfig

__all__ = ["register"]

Output = Literal["table", "jsonl"]


async def _read(
    config: Any, resource: str, *, limit: int | None, since: str | None, output: Output
) -> tuple[list[dict[str, Any]], int, int, float, list[str]]:
    from interlink.config import OAuth2AuthConfig
    from interlink.connectors import Catalog

    kept: list[dict[str, Any]] = []
    warnings: list[str] = []
    started = time.perf_counter()
    connection = config.connections.get(resource.partition(".")[0])
    store = None
    oauth2 = connection is not None and isinstance(connection.auth, OAuth2AuthConfig)
    if oauth2 or _database_exists(config):
        # Tokens come from the vault (a refresh made by an earlier run is the one to
        # use), and a connection switched off is refused.
        from interlink.oauth import open_catalog
        from interlink.store import Store

        store = Store.open(config.database)
        opened = open_catalog(config, store)
    else:
        opened = Catalog(config)  # no database yet: nothing can be switched off
    try:
        return await _read_from(opened, resource, kept, warnings, output, started, limit, since)
    finally:
        if store is not None:
            store.close()


async def _read_from(
    opened: Any,
    resource: str,
    kept: list[dict[str, Any]],
    warnings: list[str],
    output: Output,
    started: float,
    limit: int | None,
    since: str | None,
) -> tuple[list[dict[str, Any]], int, int, float, list[str]]:
    import orjson

    count = pages = 0
    async with opened as catalog:
        source = catalog.resource(resource)
        write = sys.stdout.buffer.write
        async for page in source.pages(limit=limit, since=since):
            pages += 1
            count += len(page.records)
            warnings.extend(page.warnings)
            if output == "jsonl":
                write(b"".join(orjson.dumps(r, default=str) + b"\n" for r in page.records))
            else:
                kept.extend(page.records)
    sys.stdout.flush()
    return kept, count, pages, time.perf_counter() - started, warnings


def read(
    ctx: typer.Context,
    resource: Annotated[str, typer.Argument(help="connection.resource, e.g. shop.customers")],
    config: ConfigOption = None,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Stop after N records (table default: 20)."),
    ] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="table or jsonl (one JSON record per line).")
    ] = "table",
    since: Annotated[
        str | None, typer.Option(help="Incremental cursor: only records changed since.")
    ] = None,
    record: RecordOption = None,
    replay: ReplayOption = None,
) -> None:
    """Read a resource through its connection and print the records."""
    from interlink.errors import ConfigError

    if output not in ("table", "jsonl"):
        raise ConfigError(f"--output: expected table or jsonl; got {output!r}")
    mode: Output = "jsonl" if output == "jsonl" else "table"
    if mode == "table" and limit is None:
        limit = 20
    settings = load_settings(ctx, config)
    with cassette_session(record, replay) as cassette:
        records, count, pages, elapsed, warnings = asyncio.run(
            _read(settings, resource, limit=limit, since=since, output=mode)
        )
    if mode == "table":
        from interlink.cli import _render

        _render.show_records(resource, records)
    rate = count / elapsed if elapsed > 0 else 0.0
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(
        f"{resource}: {count:,} records in {pages:,} pages, {elapsed:.2f} s ({rate:,.0f}/s)",
        err=True,
    )
    if record and cassette is not None:
        typer.echo(f"recorded {len(cassette):,} exchanges in {cassette.path}", err=True)


def register(app: typer.Typer) -> None:
    """Add the `read` command to `app`."""
    app.command("read")(read)


def _database_exists(config: InterlinkConfig) -> bool:
    """Whether interlink's database may hold state (a PostgreSQL server, or an SQLite file
    that is there): reading never creates one."""
    if config.database.backend != "sqlite":
        return True
    from sqlalchemy.engine import make_url

    path = make_url(config.database.url).database
    return bool(path) and path != ":memory:" and Path(str(path)).exists()
