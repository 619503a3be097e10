"""`interlink failed list|forget`: the records that failed in a run and that no run has
written since, which each run fetches again by id or counts failed (`sync._owed`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from interlink.cli._account_key import account_key
from interlink.cli._options import ConfigOption, load_settings
from interlink.cli._run_line import run_line

__all__ = ["register"]

failed_app = typer.Typer(
    help="Records that failed in a run and are not in the destination yet: list, give up.",
    no_args_is_help=True,
)

AccountOption = Annotated[
    str | None,
    typer.Option(
        "--account",
        "-a",
        metavar="ACCOUNT",
        help="A connected account's records (a pipeline run per account keeps its own).",
    ),
]


def _key(settings: Any, pipeline: str, account: str | None) -> tuple[str, str]:
    """The key pipeline `pipeline`'s runs keep their state under (`NAME`, or
    `NAME@ACCOUNT`), and the account; ConfigError for an unknown pipeline or an account
    that cannot be one."""
    from interlink.errors import ConfigError

    chosen = settings.pipelines.get(pipeline)
    if chosen is None:
        known = ", ".join(sorted(settings.pipelines)) or "none"
        raise ConfigError(f"no pipeline {pipeline!r} (pipelines: {known})", key="PIPELINE")
    return account_key(settings, pipeline, chosen, account, keeps="failed records")


@failed_app.command("list")
def list_(
    ctx: typer.Context,
    pipeline: Annotated[
        str | None,
        typer.Argument(metavar="[PIPELINE]", help="One pipeline (default: every one)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    account: AccountOption = None,
    config: ConfigOption = None,
) -> None:
    """List the failed records not written yet, oldest failure first: the step and error
    of their last failure, the run it was in, and how many runs they failed in."""
    from interlink.cli._render_failed import show_owed
    from interlink.store import Store, list_outstanding

    settings = load_settings(ctx, config)
    key = None if pipeline is None else _key(settings, pipeline, account)[0]
    store = Store.open(settings.database)
    try:
        with store.read() as conn:
            rows = list_outstanding(conn, key, limit=limit)
    finally:
        store.close()
    show_owed("by any pipeline" if key is None else f"by {key}", rows, limit)


@failed_app.command("forget")
def forget(
    ctx: typer.Context,
    pipeline: Annotated[str, typer.Argument(metavar="PIPELINE", help="The pipeline.")],
    keys: Annotated[
        list[str] | None, typer.Argument(metavar="[KEY]...", help="Record keys.")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every failed record the pipeline owes.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    account: AccountOption = None,
    config: ConfigOption = None,
) -> None:
    """Give up failed records: runs stop fetching them again and counting them failed.
    Nothing is written or deleted at the destination.

    Taken under the pipeline's lock: refused while it runs. Exit 1 when a key given is
    not owed."""
    from interlink.cli._render_failed import show_given_up
    from interlink.errors import ConfigError
    from interlink.store import Store
    from interlink.sync import give_up

    if every == bool(keys):
        raise ConfigError("give record keys or --all (not both)", key="KEY")
    if keys and any(not k.strip() for k in keys):
        raise ConfigError("expected record keys; got an empty one", key="KEY")
    settings = load_settings(ctx, config)
    key, acting = _key(settings, pipeline, account)
    if not yes:
        what = "every failed record" if every else f"{len(dict.fromkeys(keys or []))} record(s)"
        typer.confirm(
            f"Give up {what} of {key}? Runs will no longer fetch them again or count them failed.",
            abort=True,
        )
    store = Store.open(settings.database)
    try:
        done = give_up(settings, store, key, None if every else keys)
    finally:
        store.close()
    show_given_up(key, done, again=run_line(pipeline, acting, done.given_up))
    if done.unknown:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `failed` command group to `app`."""
    app.add_typer(failed_app, name="failed")
