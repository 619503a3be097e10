"""`interlink run PIPELINE` and `interlink runs [PIPELINE]`, as Typer commands; what a
run does is `cli._run_command`'s, which the console script also calls directly."""

from __future__ import annotations

from typing import Annotated

import typer

from interlink.cli._options import (
    ConfigOption,
    DryRunOption,
    FullRefreshOption,
    RecordOption,
    ReplayOption,
    config_path,
    load_settings,
)
from interlink.cli._run_argv import RunArgv

__all__ = ["register"]


def run(
    ctx: typer.Context,
    pipeline: Annotated[str, typer.Argument(help="The pipeline's name in interlink.yaml.")],
    config: ConfigOption = None,
    full_refresh: FullRefreshOption = False,
    dry_run: DryRunOption = False,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="A trial: stop after N records and write them, moving no cursor and "
            "deleting nothing (a replace writes to a scratch table, dropped after).",
        ),
    ] = None,
    ids: Annotated[
        list[str] | None,
        typer.Option(
            "--id",
            metavar="ID",
            help="Fetch only this record from the source by its id and write it "
            "(repeat for more); moves no cursor and deletes nothing by absence.",
        ),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(
            metavar="ACCOUNT",
            help="Act for this connected account of the source's oauth2 connection, or "
            "'*' for each in turn (default: the pipeline's account:).",
        ),
    ] = None,
    record: RecordOption = None,
    replay: ReplayOption = None,
) -> None:
    """Run a pipeline once: read, filter, map and write, checkpointing every page.

    Exit code 0 when every record went through, 1 when some failed (or, with --id, was
    not found at the source) or the run stopped; with --account '*', 1 when an account's
    run did. Ctrl-C stops the run at once: it is recorded `cancelled` (the next run
    resumes from its last checkpoint) and the exit code is 130.
    """
    from interlink.cli._run_command import run_command

    argv = RunArgv(
        pipeline=pipeline,
        config=config_path(ctx, config),
        full_refresh=full_refresh,
        dry_run=dry_run,
        limit=limit,
        ids=tuple(ids or ()),
        account=account,
        record=record,
        replay=replay,
    )
    run_command(argv, lambda path: load_settings(ctx, path))


def runs(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Argument(help="Only this pipeline's runs.")] = None,
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs to show.")] = 20,
) -> None:
    """List recent runs with their counts and status, and why each that did not succeed
    stopped (its error)."""
    from interlink.cli import _render
    from interlink.store import Store

    settings = load_settings(ctx, config)
    store = Store.open(settings.database)
    try:
        _render.show_runs(store.runs(pipeline, limit=limit))
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add `run` and `runs` to `app`."""
    app.command("run")(run)
    app.command("runs")(runs)
