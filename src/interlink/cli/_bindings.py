"""`interlink bindings list|forget`: an API pipeline's source <-> target record bindings."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from interlink.cli._account_key import account_key
from interlink.cli._options import ConfigOption, load_settings
from interlink.cli._run_line import run_line

__all__ = ["register"]

bindings_app = typer.Typer(
    help="Which target record each source record of an API pipeline is bound to.",
    no_args_is_help=True,
)

PipelineArgument = Annotated[str, typer.Argument(metavar="PIPELINE", help="An API pipeline.")]
AccountOption = Annotated[
    str | None,
    typer.Option(
        "--account",
        "-a",
        metavar="ACCOUNT",
        help="A connected account's bindings (a pipeline run per account keeps its own).",
    ),
]


def _open(ctx: typer.Context, config: Any, pipeline: str, account: str | None) -> tuple[Any, ...]:
    """The settings, the store and the key the pipeline's runs keep their bindings under
    (`NAME`, or `NAME@ACCOUNT` for the account a run acts for); ConfigError for a pipeline
    that keeps none, or an account that cannot be one."""
    from interlink.store import Store
    from interlink.sync import bindings_pipeline

    settings = load_settings(ctx, config)
    chosen = bindings_pipeline(settings, pipeline)
    key, acting = account_key(settings, pipeline, chosen, account, keeps="bindings")
    return settings, Store.open(settings.database), key, acting


@bindings_app.command("list")
def list_(
    ctx: typer.Context,
    pipeline: PipelineArgument,
    keys: Annotated[
        list[str] | None,
        typer.Option("--key", "-k", metavar="KEY", help="Only this source key (repeatable)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    account: AccountOption = None,
    config: ConfigOption = None,
) -> None:
    """List bindings, by source key."""
    from interlink.cli._render_bindings import show_bindings
    from interlink.store import list_bindings

    _, store, key, _ = _open(ctx, config, pipeline, account)
    try:
        rows = list_bindings(store.engine, key, keys or (), limit=limit)
    finally:
        store.close()
    show_bindings(key, rows, None if keys else limit)
    if keys:
        found = {binding.source_key for binding, _ in rows}
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing:
            typer.echo("No binding for: " + ", ".join(missing), err=True)
            raise typer.Exit(1)


@bindings_app.command("forget")
def forget(
    ctx: typer.Context,
    pipeline: PipelineArgument,
    keys: Annotated[list[str], typer.Argument(metavar="KEY...", help="Source keys.")],
    pending: Annotated[
        bool,
        typer.Option(
            "--pending", help="Forget pending creates too (the record may be created twice)."
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    account: AccountOption = None,
    config: ConfigOption = None,
) -> None:
    """Forget bindings, so that those source records are treated as new: for a target
    record deleted at the target, which updates would otherwise fail on.

    Taken under the pipeline's lock: refused while it runs. It prints the `interlink run
    --id` line that sends them now (an incremental run reaches them only when they change
    again). A target record that still exists is bound again by the pipeline's match:
    fields, or created a second time."""
    from interlink.cli._render_bindings import show_forgotten
    from interlink.errors import ConfigError
    from interlink.sync import forget as forget_keys

    if any(not k.strip() for k in keys):
        raise ConfigError("expected source keys; got an empty one", key="KEY")
    settings, store, key, acting = _open(ctx, config, pipeline, account)
    try:
        if not yes:
            count = len(dict.fromkeys(keys))
            typer.confirm(
                f"Forget {count} binding{'' if count == 1 else 's'} of {key}? The next run "
                "creates or matches those records at the target again.",
                abort=True,
            )
        done = forget_keys(settings, store, key, keys, pending=pending)
    finally:
        store.close()
    show_forgotten(key, done, again=run_line(pipeline, acting, done.forgotten))
    if done.kept_pending or done.unknown:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `bindings` command group to `app`."""
    app.add_typer(bindings_app, name="bindings")
