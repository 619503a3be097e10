"""`interlink db upgrade | status`: interlink's own tables in the configured database.

The schema is versioned (docs/database.md). SQLite is upgraded on open; a PostgreSQL
database, which other workers may share, is upgraded only by `interlink db upgrade`, and
every other command refuses to run on it until then (exit code 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from interlink.cli._options import ConfigOption, load_settings

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["register"]

db_app = typer.Typer(
    help="interlink's own tables: upgrade them to this release, or show their revision.",
    no_args_is_help=True,
)


def _engine(ctx: typer.Context, config: Any) -> sa.Engine:
    """The configured database, without `Store.open` (which refuses an outdated schema)."""
    from interlink.store import create_engine

    return create_engine(load_settings(ctx, config).database)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Create or upgrade interlink's tables to this release's revision."""
    from interlink.store import upgrade_schema

    engine = _engine(ctx, config)
    try:
        before, after = upgrade_schema(engine)
    finally:
        engine.dispose()
    if before.up_to_date:
        typer.echo(
            f"{after.database}: interlink's tables are at revision {after.current}, "
            "this release's; nothing to do."
        )
        return
    if before.current is None:
        typer.echo(f"{after.database}: created interlink's tables at revision {after.current}.")
        return
    typer.echo(
        f"{after.database}: upgraded interlink's tables from revision {before.describe()} "
        f"to {after.current}."
    )


@db_app.command("status")
def status(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Show the revision interlink's tables are at, and the one this release needs."""
    from interlink.store import schema_status

    engine = _engine(ctx, config)
    try:
        found = schema_status(engine)
    finally:
        engine.dispose()
    sqlite = engine.dialect.name == "sqlite"
    typer.echo(f"database  {found.database}")
    typer.echo(f"current   {found.describe()}")
    typer.echo(f"head      {found.head}")
    if found.up_to_date:
        verdict = "up to date"
    elif found.current is None:
        verdict = "empty: the first command that opens it creates the tables"
    elif found.newer:
        verdict = "newer than this release: run the release that upgraded it, or a later one"
    elif sqlite:
        verdict = "outdated: the next command that opens it upgrades it (or `interlink db upgrade`)"
    else:
        verdict = "outdated: run `interlink db upgrade`"
    typer.echo(f"status    {verdict}")


def register(app: typer.Typer) -> None:
    """Add the `db` command group to `app`."""
    app.add_typer(db_app, name="db")
