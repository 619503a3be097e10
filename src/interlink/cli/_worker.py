"""`interlink worker`: run queued jobs (and scheduled pipelines) until stopped."""

from __future__ import annotations

import asyncio
import importlib
import signal
from contextlib import suppress
from typing import Annotated, Any

import typer

from interlink.cli._options import ConfigOption, load_settings
from interlink.errors import ConfigError

__all__ = ["register"]


def _load_kinds(modules: list[str]) -> Any:
    from interlink.webhooks import job_kinds

    kinds = job_kinds()
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"cannot import job module {name!r}: {exc}", key="--import") from None
        register = getattr(module, "register", None)
        if not callable(register):
            raise ConfigError(
                f"job module {name!r} has no register(kinds) function", key="--import"
            )
        register(kinds)
    return kinds


async def _serve_jobs(
    config: Any, *, concurrency: int | None, modules: list[str], burst: bool, schedules: bool
) -> Any:
    from interlink.cli import _render_worker
    from interlink.cli._runtime import tune_collector
    from interlink.jobs import open_queue, run_worker
    from interlink.store import Store
    from interlink.webhooks import release_chore

    kinds = _load_kinds(modules)
    tune_collector()
    store = Store.open(config.database)
    try:
        queue = open_queue(config, store)
    except BaseException:
        store.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    workers = concurrency or config.jobs.concurrency
    status = _render_worker.WorkerStatus(queue.backend, workers, sorted(kinds))
    watching = asyncio.create_task(_watch(queue, status, stop))
    try:
        with status:
            return await run_worker(
                config,
                store,
                queue,
                kinds=kinds,
                concurrency=workers,
                stop=stop,
                burst=burst,
                schedules=schedules,
                chores=[release_chore(config, store, queue)],
            )
    finally:
        watching.cancel()
        with suppress(asyncio.CancelledError):
            await watching
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        queue.close()
        store.close()


async def _watch(queue: Any, status: Any, stop: asyncio.Event) -> None:
    while not stop.is_set():
        status.update(await asyncio.to_thread(queue.counts))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def worker(
    ctx: typer.Context,
    config: ConfigOption = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="Jobs run at once (default: jobs.concurrency)."),
    ] = None,
    modules: Annotated[
        list[str] | None,
        typer.Option(
            "--import",
            metavar="MODULE",
            help="Import MODULE and call its register(kinds) to add job kinds.",
        ),
    ] = None,
    burst: Annotated[
        bool, typer.Option("--burst", help="Stop when no job is ready instead of waiting.")
    ] = False,
    schedules: Annotated[
        bool,
        typer.Option(
            "--schedules/--no-schedules", help="Enqueue scheduled pipelines when they are due."
        ),
    ] = True,
) -> None:
    """Run queued jobs until Ctrl-C or SIGTERM; running pipelines stop at their next batch
    and resume later from their checkpoint."""
    from interlink.cli import _render_worker
    from interlink.cli._validate import check_buildable

    # Scheduled and submitted pipelines run here: refuse a config `check` refuses.
    settings = load_settings(ctx, config)
    check_buildable(settings)
    stats = asyncio.run(
        _serve_jobs(
            settings,
            concurrency=concurrency,
            modules=modules or [],
            burst=burst,
            schedules=schedules,
        )
    )
    _render_worker.show_worker_stats(stats)


def register(app: typer.Typer) -> None:
    """Add `worker` to `app`."""
    app.command("worker")(worker)
