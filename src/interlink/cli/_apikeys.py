"""`interlink apikeys create | list | revoke`: the keys of the jobs API (`interlink serve`).

A key is printed once, when it is created, on stdout alone (the explanation goes to
stderr), so `KEY=$(interlink apikeys create ci --scope write)` captures just the key. Only
its SHA-256 is stored; a lost key is revoked and replaced, never recovered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from interlink.cli._options import ConfigOption, load_settings

if TYPE_CHECKING:
    from interlink.store import ApiKeyScope

__all__ = ["register"]

apikeys_app = typer.Typer(
    help="API keys for the HTTP API: create (shown once), list, revoke.",
    no_args_is_help=True,
)

_SCOPES = ("read", "write", "admin")


def _store(ctx: typer.Context, config: Any) -> Any:
    from interlink.store import Store

    return Store.open(load_settings(ctx, config).database)


@apikeys_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. 'ci' or 'grafana'.")],
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            "-s",
            metavar="read|write|admin",
            help="read: GET routes; write: also submit and cancel jobs; admin: everything.",
        ),
    ] = "read",
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once."""
    from interlink.errors import ConfigError
    from interlink.store import create_api_key

    if scope not in _SCOPES:
        raise ConfigError(f"expected one of {', '.join(_SCOPES)}; got {scope!r}", key="--scope")
    if not name.strip() or len(name) > 200:
        raise ConfigError("a key's name is 1 to 200 characters", key="NAME")
    store = _store(ctx, config)
    try:
        created = create_api_key(store.engine, name, cast("ApiKeyScope", scope))
    finally:
        store.close()
    key = created.key
    typer.echo(
        f"Created API key {key.id} {key.name!r} (scope {key.scope}, prefix {key.prefix}). "
        "This is the only time it is shown; keep it somewhere safe:",
        err=True,
    )
    typer.echo(created.secret)


@apikeys_app.command("list")
def list_(ctx: typer.Context, config: ConfigOption = None) -> None:
    """List every key (never the keys themselves: they are not stored)."""
    from interlink.cli import _render_service
    from interlink.store import list_api_keys

    store = _store(ctx, config)
    try:
        keys = list_api_keys(store.engine)
    finally:
        store.close()
    _render_service.show_api_keys(keys)


@apikeys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[int, typer.Argument(metavar="ID", help="The id `apikeys list` shows.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key; requests with it fail (401) from the next one on."""
    import time

    from interlink.errors import ConfigError
    from interlink.store import revoke_api_key

    store = _store(ctx, config)
    try:
        started = time.time()
        key = revoke_api_key(store.engine, key_id)
    finally:
        store.close()
    if key is None:
        raise ConfigError(f"no API key with id {key_id}; see interlink apikeys list", key="ID")
    assert key.revoked_at is not None
    if key.revoked_at < started:
        typer.echo(f"API key {key.id} {key.name!r} was already revoked.")
    else:
        typer.echo(f"Revoked API key {key.id} {key.name!r}; it fails from the next request on.")


def register(app: typer.Typer) -> None:
    """Add the `apikeys` command group to `app`."""
    app.add_typer(apikeys_app, name="apikeys")
