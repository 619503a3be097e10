"""`interlink connections list | enable | disable | disconnect`: each connection, switched
on or off, and the state of its stored tokens; switching connections and accounts off and
on; disconnecting an account (revoke, then forget its token)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from interlink.cli._options import ConfigOption, load_settings

if TYPE_CHECKING:
    from interlink.store import Store

__all__ = ["register"]

connections_app = typer.Typer(
    help="The connections of interlink.yaml: list, enable, disable, disconnect.",
    no_args_is_help=True,
)

ConnectionArgument = Annotated[
    str, typer.Argument(metavar="CONNECTION", help="A connection of interlink.yaml.")
]
AccountOption = Annotated[
    str | None,
    typer.Option(
        "--account",
        "-a",
        metavar="ACCOUNT",
        help="One connected account; without it, the whole connection.",
    ),
]


def _open(ctx: typer.Context, config: Any) -> tuple[Any, Store]:
    from interlink.store import Store

    settings = load_settings(ctx, config)
    return settings, Store.open(settings.database)


def _account(account: str | None) -> str:
    from interlink.errors import ConfigError

    if account is not None and not account:
        raise ConfigError(
            "expected an account name; leave --account out to switch the whole connection",
            key="--account",
        )
    return account or ""


@connections_app.command("list")
def list_connections(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Each connection: on or off, its last runs, its accounts' tokens.

    For oauth2 connections, each stored account's status and token expiry (never the
    tokens themselves)."""
    from interlink.oauth import describe_connections

    settings, store = _open(ctx, config)
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


@connections_app.command("disable")
def disable_connection(
    ctx: typer.Context,
    connection: ConnectionArgument,
    account: AccountOption = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", "-r", help="Why, for whoever looks at it later."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Switch a connection (or one account of it) off.

    Its runs, jobs, schedules and webhook deliveries are refused until it is enabled
    again. Nothing is deleted."""
    from interlink.oauth import switch_off

    chosen = _account(account)
    settings, store = _open(ctx, config)
    try:
        done = switch_off(settings, store, connection, chosen, reason=reason, by="cli")
    finally:
        store.close()
    if done.changed:
        again = f"interlink connections enable {connection}"
        again += f" --account {chosen}" if chosen else ""
        typer.echo(f"Switched {done.what} off; `{again}` switches it on again.")
    else:
        since = ""
        if done.switch is not None:
            from interlink.cli._render_connections import when

            since = f" (since {when(done.switch.disabled_at)}"
            since += f": {done.switch.reason})" if done.switch.reason else ")"
        typer.echo(f"{done.what[0].upper()}{done.what[1:]} is already off{since}.")


@connections_app.command("enable")
def enable_connection(
    ctx: typer.Context,
    connection: ConnectionArgument,
    account: AccountOption = None,
    config: ConfigOption = None,
) -> None:
    """Switch a connection (or one account of it) on again.

    What was refused while it was off goes on from where it was."""
    from interlink.oauth import switch_on

    chosen = _account(account)
    settings, store = _open(ctx, config)
    try:
        done = switch_on(settings, store, connection, chosen)
        released = _release_held(settings, store)
    finally:
        store.close()
    what = f"{done.what[0].upper()}{done.what[1:]}"
    if done.changed:
        typer.echo(f"Switched {done.what} on.")
    else:
        typer.echo(f"{what} is already on.")
    if released:
        many = len(released) != 1
        typer.echo(
            f"{len(released)} held webhook deliver{'ies' if many else 'y'} "
            f"{'are' if many else 'is'} queued (`interlink webhooks list --status pending`)."
        )
    if not done.enabled:
        typer.echo(
            f"Connection {connection!r} itself is off, which still stops this account: "
            f"`interlink connections enable {connection}`.",
            err=True,
        )


def _release_held(settings: Any, store: Any) -> list[int]:
    """Queue the held webhook deliveries nothing holds any more; a failure is said, not
    raised: the switch is on, and a running worker (`interlink worker`, `interlink serve`)
    queues them within a minute."""
    from interlink.jobs import open_queue
    from interlink.webhooks import release_held

    try:
        queue = open_queue(settings, store)
        try:
            return release_held(settings, store, queue)
        finally:
            queue.close()
    except Exception as exc:
        typer.echo(
            f"Held webhook deliveries were not queued ({type(exc).__name__}: {exc}); "
            "a running worker (interlink worker, interlink serve) queues them within a minute.",
            err=True,
        )
        return []


@connections_app.command("disconnect")
def disconnect_account(
    ctx: typer.Context,
    connection: ConnectionArgument,
    account: AccountOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    forget_anyway: Annotated[
        bool,
        typer.Option(
            "--forget-anyway",
            help="Forget the token even when the provider does not confirm the revocation.",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Revoke an account's grant at the provider and forget its token.

    The revocation is RFC 7009's, at the connection's revocation_url; without one, the
    token is forgotten and you are told how the provider removes the grant. Connecting
    the account again needs `interlink connect`."""
    import asyncio

    from interlink.oauth import check_target, disconnect

    chosen = _account(account)
    settings, store = _open(ctx, config)
    try:
        check_target(settings, store.engine, connection, chosen)
        if not yes:
            whose = f"account {chosen!r} of {connection!r}" if chosen else repr(connection)
            typer.confirm(
                f"Revoke and forget the token of {whose}? It must be connected again to be used.",
                abort=True,
            )
        done = asyncio.run(
            disconnect(settings, store, connection, chosen, forget_anyway=forget_anyway)
        )
    finally:
        store.close()
    whose = (
        f"account {chosen!r} of connection {connection!r}"
        if chosen
        else f"connection {connection!r}"
    )
    if done.revoked is not None:
        typer.echo(f"Revoked the grant ({done.revoked}) and forgot the token of {whose}.")
    else:
        typer.echo(f"Forgot the token of {whose}; the provider did not revoke it.")
    if done.note:
        typer.echo(f"Note: {done.note}.", err=True)


def register(app: typer.Typer) -> None:
    """Add the `connections` command group to `app`."""
    app.add_typer(connections_app, name="connections")
