"""What `interlink run PIPELINE` does, without Typer: the Typer command (`cli._run`) and
the console script's direct path (`cli._direct`) both call `run_command`.

It reports the outcome by its exit code: it returns for 0, and raises SystemExit with
1 (a record failed or the run stopped), 2 (a usage error) or 128 + the signal (Ctrl-C,
SIGTERM); an InterlinkError (a bad config, an unreachable database) goes up to the
caller, which prints it and exits with its code.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from interlink.cli._cassettes import cassette_session, check_cassette_options
from interlink.cli._run_argv import RunArgv

if TYPE_CHECKING:
    from interlink.cli._render_progress import RunProgress
    from interlink.config import InterlinkConfig
    from interlink.sync import RunResult

__all__ = ["INTERRUPTED_EXIT", "run_command"]

T = TypeVar("T")

INTERRUPTED_EXIT = 130
"""The exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells do); 143 for SIGTERM."""
_RECEIVED: list[signal.Signals] = []

_REASONS = {
    signal.SIGINT: "interrupted by Ctrl-C (SIGINT)",
    signal.SIGTERM: "stopped by SIGTERM",
}


async def _interruptible(work: Awaitable[T]) -> T:
    """Await `work`; Ctrl-C or SIGTERM cancels it with the reason, which the run's row
    records (`cancelled`, "interrupted by Ctrl-C (SIGINT)") on its way out."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    installed: list[signal.Signals] = []
    if task is not None:
        for sig, reason in _REASONS.items():
            try:
                loop.add_signal_handler(sig, _cancel, task, sig, reason)
            except (ValueError, RuntimeError, NotImplementedError):
                continue  # not the main thread, or no signals here: Ctrl-C as Python does it
            installed.append(sig)
    try:
        return await work
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _cancel(task: asyncio.Task[Any], sig: signal.Signals, reason: str) -> None:
    _RECEIVED.append(sig)
    task.cancel(reason)


def _stopped(store: Any, key: str) -> None:
    """After Ctrl-C or SIGTERM: say how the run was recorded, and exit 128 + the signal
    (130 for Ctrl-C, 143 for SIGTERM)."""
    from interlink.cli import _render

    latest = store.runs(key, limit=1)
    _render.show_interrupted(latest[0] if latest else None, key)
    code = 128 + int(_RECEIVED[-1]) if _RECEIVED else INTERRUPTED_EXIT
    raise SystemExit(code)


def _catalogs(config: Any, store: Any) -> Any:
    """Opens the catalog of each run, for the account it acts for."""
    from interlink.oauth import open_catalog

    return lambda accounts: open_catalog(config, store, accounts=accounts)


async def _run(
    config: Any,
    store: Any,
    name: str,
    *,
    account: str,
    full_refresh: bool,
    dry_run: bool,
    limit: int | None,
    ids: list[str] | None,
    progress: Any,
) -> Any:
    from interlink.sync import run_pipeline, run_records

    if ids:
        return await run_records(
            config,
            name,
            ids,
            store=store,
            catalogs=_catalogs(config, store),
            account=account,
            dry_run=dry_run,
            progress=progress,
            offload=False,
        )
    return await run_pipeline(
        config,
        name,
        store=store,
        catalogs=_catalogs(config, store),
        account=account,
        full_refresh=full_refresh,
        dry_run=dry_run,
        limit=limit,
        progress=progress,
        # Nothing else runs on this process's event loop: commit on it.
        offload=False,
    )


def _run_each_account(
    settings: Any, store: Any, name: str, *, full_refresh: bool, dry_run: bool, limit: int | None
) -> bool:
    """`account: "*"`: every connected account in turn, a summary table; True when every
    account that ran went through."""
    from interlink.cli import _render, _render_progress
    from interlink.sync import run_each_account

    with _render_progress.RunsProgress(stderr=True) as bar:

        def finished(run: Any) -> None:
            if run.status == "skipped":
                bar.say(f"{name}@{run.account}: skipped, {run.message}")

        runs = asyncio.run(
            _interruptible(
                run_each_account(
                    settings,
                    name,
                    store=store,
                    catalogs=_catalogs(settings, store),
                    full_refresh=full_refresh,
                    dry_run=dry_run,
                    limit=limit,
                    progress=bar.update,
                    finished=finished,
                    offload=False,
                )
            )
        )
    _render.show_account_runs(name, runs)
    return all(run.ok for run in runs)


def run_command(argv: RunArgv, load: Callable[[Path], InterlinkConfig]) -> None:
    """Run `argv.pipeline` once, with the config `load` reads from `argv.config` (the
    caller's loader remembers where each key is written, for its error messages).

    Exit code 0 when every record went through, 1 when some failed (or, with --id, was
    not found at the source) or the run stopped; with --account '*', 1 when an account's
    run did. Ctrl-C stops the run at once: it is recorded `cancelled` (the next run
    resumes from its last checkpoint) and the exit code is 130.
    """
    from interlink.cli._runtime import tune_collector
    from interlink.cli._validate import check_buildable
    from interlink.connectors import Catalog  # noqa: F401  (imported before the freeze)
    from interlink.store import Store
    from interlink.sync import acting_account, check_records, run_pipeline  # noqa: F401

    pipeline, ids, limit = argv.pipeline, list(argv.ids), argv.limit
    full_refresh, dry_run = argv.full_refresh, argv.dry_run
    check_cassette_options(argv.record, argv.replay)
    if ids and (full_refresh or limit is not None):
        given = "--full-refresh" if full_refresh else "--limit"
        print(
            f"--id cannot be combined with {given}: a run by id fetches only the records it names",
            file=sys.stderr,
        )
        raise SystemExit(2)
    # Everything that can be refused up front is, before the progress display starts:
    # the config, the pipeline's filter and mapping, then the database.
    settings = load(argv.config)
    check_buildable(settings, pipelines=[pipeline])
    acting = acting_account(settings, pipeline, settings.pipelines[pipeline], argv.account)
    if ids:
        check_records(settings, pipeline, ids)
        if acting == "*":
            print(
                "--id fetches one account's records: name the account with --account "
                f"(pipeline {pipeline} runs for every connected account)",
                file=sys.stderr,
            )
            raise SystemExit(2)
    with cassette_session(argv.record, argv.replay):
        store = Store.open(settings.database)
        if acting == "*":
            try:
                tune_collector()
                went_through = _run_each_account(
                    settings,
                    store,
                    pipeline,
                    full_refresh=full_refresh,
                    dry_run=dry_run,
                    limit=limit,
                )
            except asyncio.CancelledError:
                _stopped(store, pipeline)
            finally:
                store.close()
            if not went_through:
                raise SystemExit(1)
            return
        label = pipeline if not acting else f"{pipeline}@{acting}"
        try:
            tune_collector()
            bar = _progress(label)
            with bar if bar is not None else nullcontext():
                result = asyncio.run(
                    _interruptible(
                        _run(
                            settings,
                            store,
                            pipeline,
                            account=acting,
                            full_refresh=full_refresh,
                            dry_run=dry_run,
                            limit=limit,
                            ids=ids or None,
                            progress=None if bar is None else bar.update,
                        )
                    )
                )
        except asyncio.CancelledError:
            _stopped(store, label)
        finally:
            store.close()
        _show_run(result)
        if not result.ok:
            raise SystemExit(1)


def _progress(label: str) -> RunProgress | None:
    """The live bar on a terminal; written to a file or a pipe, none (and no rich)."""
    from interlink.cli._run_summary import plain_output

    if plain_output(sys.stderr):
        return None
    from interlink.cli import _render_progress

    return _render_progress.RunProgress(label)


def _show_run(result: RunResult) -> None:
    """The run's summary: as plain text when rich would write exactly that (a file or a
    pipe), else drawn by rich."""
    from interlink.cli._run_summary import output_width, plain_output, plain_text, run_summary

    text = plain_text(run_summary(result), output_width()) if plain_output(sys.stdout) else None
    if text is None:
        from interlink.cli import _render

        _render.show_run(result)
        return
    sys.stdout.write(text)
    sys.stdout.flush()
