"""`interlink connections list`: each connection and the state of its stored tokens."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from interlink.cli._options import ConfigOption, load_settings

__all__ = ["register"]

connections_app = typer.Typer(
    help="The connections of interlink.yaml and their stored tokens.", no_args_is_help=True
)


@connections_app.command("list")
def list_connections(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Each connection: its auth type and, for oauth2, each stored account's status,
    token expiry and last error (never the tokens)."""
    from interlink.oauth import describe_connections
    from interlink.store import Store

    settings = load_settings(ctx, config)
    store = Store.open(settings.database)
    try:
        described: list[dict[str, Any]] = describe_connections(settings, store.engine)
    finally:
        store.close()
    if as_json:
        import orjson

        typer.echo(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode())
        return
    from interlink.cli._render_connections import show_connections

    show_connections(described)


def register(app: typer.Typer) -> None:
    """Add the `connections` command group to `app`."""
    app.add_typer(connections_app, name="connections")
