"""`run_pipeline`: a Prefect task that runs one of interlink's pipelines in this process.

```python
from prefect import flow
from interlink.prefect import run_pipeline

@flow
def nightly() -> None:
    counts = run_pipeline("customers", config="interlink.yaml")
    print(counts.created, counts.updated)
```

It does what `interlink run customers` does: same lock, checkpoints, run row and
exit rule (a run with failed records is not a success), with the counts as the task's
result and as a table artifact. interlink retries requests itself and resumes a failed
run from its checkpoint, so the task is made with `retries=0` (see docs/prefect.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from prefect.cache_policies import NO_CACHE

from interlink.connectors import Catalog
from interlink.errors import ConfigError, InterlinkError, JobCancelledError
from interlink.oauth import open_catalog
from interlink.sync import (
    ALL_ACCOUNTS,
    RunResult,
    acting_account,
    run_each_account,
    run_pipeline as run_pipeline_once,
    state_key,
)
from prefect import task

from ._artifacts import artifact_key, publish_counts
from ._counts import RunCounts
from ._errors import PipelineRunError
from ._logs import forward_logs, run_logger
from ._project import ConfigLike, Project, load_project, run_sync

__all__ = ["run_counts", "run_pipeline"]

_PROGRESS_EVERY = 10.0
"""Seconds between two progress lines in the task's log."""


@task(name="interlink-run", retries=0, cache_policy=NO_CACHE, task_run_name="run {pipeline}")
def run_pipeline(
    pipeline: str,
    config: ConfigLike = "interlink.yaml",
    *,
    account: str | None = None,
    full_refresh: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
    fail_on_record_errors: bool = True,
    log_level: int | str = logging.INFO,
) -> RunCounts:
    """Run pipeline `pipeline` of the project at `config` once; its `RunCounts`.

    The options are `interlink run`'s: `account` (a connected account, or `"*"` for each
    in turn), `full_refresh`, `dry_run`, `limit` (a trial). The task fails with
    `PipelineRunError`, whose message is interlink's reason, when the run failed or was
    cancelled, and when records failed unless `fail_on_record_errors` is False. A config
    that is wrong fails it with the `ConfigError` `interlink run` prints (file, line, key).
    interlink's log records at `log_level` and above go to the task run's log.
    """
    project = load_project(config)
    with forward_logs(project.redactor, level=log_level):
        counts = run_counts(
            project,
            pipeline,
            account=account,
            full_refresh=full_refresh,
            dry_run=dry_run,
            limit=limit,
        )
    logger = run_logger()
    logger.log(logging.INFO if counts.ok else logging.ERROR, "%s", counts.summary())
    for warning in counts.warnings:
        logger.warning("%s: %s", counts.label, warning)
    publish_counts(
        [counts],
        key=artifact_key(pipeline),
        description=f"interlink run of pipeline {pipeline}: {counts.status}",
    )
    if _fails(counts, fail_on_record_errors):
        raise PipelineRunError(counts)
    return counts


def _fails(counts: RunCounts, fail_on_record_errors: bool) -> bool:
    if counts.status == "completed_with_errors":
        return fail_on_record_errors
    return counts.status != "succeeded"


def run_counts(
    project: Project,
    pipeline: str,
    *,
    account: str | None = None,
    full_refresh: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
) -> RunCounts:
    """Run the pipeline and say what it did; a run that raised is a `failed` (or
    `cancelled`) RunCounts with interlink's message, never an exception, except a wrong
    config (ConfigError, pointed at its line)."""
    config = project.config
    chosen = config.pipelines.get(pipeline)
    if chosen is None:
        known = ", ".join(config.pipelines) or "none defined"
        raise project.locate(
            ConfigError(f"unknown pipeline {pipeline!r}; known: {known}", key="pipelines")
        )
    try:
        acting = acting_account(config, pipeline, chosen, account)
        with project.store() as store:

            def catalogs(accounts: Mapping[str, str]) -> Catalog:
                return open_catalog(config, store, accounts=accounts)

            options: dict[str, Any] = {
                "store": store,
                "catalogs": catalogs,
                "full_refresh": full_refresh,
                "dry_run": dry_run,
                "limit": limit,
                # This task's loop runs nothing else: commit on it, as `interlink run` does.
                "offload": False,
            }
            if acting == ALL_ACCOUNTS:
                return _each_account(project, pipeline, options)
            return _once(project, pipeline, acting, options)
    except ConfigError as error:
        raise project.locate(error) from None


def _once(project: Project, pipeline: str, account: str, options: dict[str, Any]) -> RunCounts:
    last: list[RunResult] = []
    progress = _ProgressLog(pipeline)

    def seen(result: RunResult) -> None:
        last[:] = [result]
        progress(result)

    try:
        result = run_sync(
            lambda: run_pipeline_once(
                project.config, pipeline, account=account, progress=seen, **options
            )
        )
    except ConfigError:
        raise
    except InterlinkError as error:
        # The runner recorded the run (status, counts, message) before raising; the last
        # progress call handed us its RunResult. A run that failed before its first batch
        # has counted nothing: its id is read back from the run it recorded.
        status = "cancelled" if isinstance(error, JobCancelledError) else "failed"
        if last:
            counts = RunCounts.from_result(last[0])
        else:
            run_id = _recorded_run_id(options["store"], state_key(pipeline, account), status)
            counts = RunCounts(pipeline=pipeline, status=status, account=account, run_id=run_id)
        return replace(counts, status=status, message=project.redactor.text(str(error)))
    return RunCounts.from_result(result)


def _recorded_run_id(store: Any, key: str, status: str) -> int | None:
    """The id of the run just recorded under `key` with `status` (its newest such run)."""
    for row in store.runs(key, limit=5):
        if row["pipeline"] == key and row["status"] == status:
            return int(row["id"])
    return None


def _each_account(project: Project, pipeline: str, options: dict[str, Any]) -> RunCounts:
    try:
        runs = run_sync(
            lambda: run_each_account(
                project.config, pipeline, progress=_ProgressLog(pipeline), **options
            )
        )
    except ConfigError:
        raise
    except InterlinkError as error:
        status = "cancelled" if isinstance(error, JobCancelledError) else "failed"
        message = project.redactor.text(str(error))
        return RunCounts(pipeline=pipeline, status=status, account=ALL_ACCOUNTS, message=message)
    return RunCounts.from_accounts(pipeline, runs)


class _ProgressLog:
    """A line in the task's log every few seconds while a long run goes on."""

    def __init__(self, pipeline: str) -> None:
        self._pipeline = pipeline
        self._next = time.monotonic() + _PROGRESS_EVERY
        self._logger = _run_logger()

    def __call__(self, result: RunResult) -> None:
        now = time.monotonic()
        if self._logger is None or now < self._next:
            return
        self._next = now + _PROGRESS_EVERY
        counts = result.counts
        label = f"{self._pipeline}@{result.account}" if result.account else self._pipeline
        self._logger.info(
            "%s: %s read, %s created, %s updated, %s failed so far",
            label,
            f"{counts['read']:,}",
            f"{counts['created']:,}",
            f"{counts['updated']:,}",
            f"{counts['failed']:,}",
        )


def _run_logger() -> logging.LoggerAdapter[logging.Logger] | None:
    from prefect.context import TaskRunContext

    if TaskRunContext.get() is None:
        return None
    logger = run_logger()
    return logger if isinstance(logger, logging.LoggerAdapter) else None
