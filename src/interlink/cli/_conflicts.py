"""`interlink conflicts list|show|resolve`: records both sides changed, parked for you."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from interlink.cli._options import ConfigOption, load_settings

__all__ = ["register"]

conflicts_app = typer.Typer(
    help="Records changed on both sides since the last sync (conflict: manual).",
    no_args_is_help=True,
)


def _open(ctx: typer.Context, config: Any) -> tuple[Any, Any]:
    from interlink.store import Store

    settings = load_settings(ctx, config)
    return settings, Store.open(settings.database)


@conflicts_app.command("list")
def list_(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Argument(help="Only this pipeline's.")] = None,
    config: ConfigOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
) -> None:
    """List open conflicts."""
    from interlink.cli import _render
    from interlink.store import list_conflicts

    _, store = _open(ctx, config)
    try:
        rows = list_conflicts(store.engine, pipeline, status=None if all_ else "open")
    finally:
        store.close()
    _render.show_conflicts(rows)


@conflicts_app.command("show")
def show(
    ctx: typer.Context,
    conflict_id: Annotated[int, typer.Argument(metavar="ID")],
    config: ConfigOption = None,
) -> None:
    """Show both sides of one conflict, field by field."""
    from interlink.cli import _render
    from interlink.errors import ConfigError
    from interlink.store import conflict

    _, store = _open(ctx, config)
    try:
        row = conflict(store.engine, conflict_id)
    finally:
        store.close()
    if row is None:
        raise ConfigError(f"no conflict with id {conflict_id}", key="conflicts")
    _render.show_conflict(row)


@conflicts_app.command("resolve")
def resolve(
    ctx: typer.Context,
    conflict_id: Annotated[int, typer.Argument(metavar="ID")],
    take: Annotated[str, typer.Option("--take", help="source or target: the side that wins.")],
    config: ConfigOption = None,
) -> None:
    """Settle a conflict: --take source writes the source's fields to the target,
    --take target keeps the target; both bind the pair as in sync."""
    from interlink.errors import ConfigError
    from interlink.oauth import open_catalog
    from interlink.sync import resolve as settle

    if take not in ("source", "target"):
        raise ConfigError(f"--take: expected source or target; got {take!r}")
    settings, store = _open(ctx, config)

    async def go() -> dict[str, Any]:
        async with open_catalog(settings, store) as catalog:
            return await settle(
                settings, store, catalog, conflict_id, "source" if take == "source" else "target"
            )

    try:
        row = asyncio.run(go())
    finally:
        store.close()
    typer.echo(f"conflict {row['id']} resolved: took the {row['resolution']}")


def register(app: typer.Typer) -> None:
    """Add the `conflicts` command group to `app`."""
    app.add_typer(conflicts_app, name="conflicts")
