"""`run_pipelines`: a ready Prefect flow that runs several pipelines in dependency order.

```python
from interlink.prefect import run_pipelines

run_pipelines(["customers", "orders"])                      # in this order
run_pipelines(after={"invoices": ["orders", "customers"]})  # every pipeline, by its edges
```

The plan is checked before anything runs (`plan_order`). Each pipeline is a
`run_pipeline` task; one whose run fails stops the pipelines that run after it (they are
`not_run`, and say why), the others go on, and the flow then fails naming each failed
pipeline with interlink's reason. The counts of every pipeline are the flow's result and
one table artifact (`interlink-pipelines`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from prefect.futures import PrefectFuture, as_completed

from prefect import flow

from ._artifacts import artifact_key, publish_counts
from ._counts import RunCounts
from ._errors import PipelineRunError, PipelinesFailedError
from ._logs import run_logger
from ._order import Step, plan_order
from ._pipeline_task import run_pipeline
from ._project import load_project

__all__ = ["run_pipelines"]


@flow(name="interlink-pipelines")
def run_pipelines(
    pipelines: list[str] | None = None,
    after: dict[str, list[str]] | None = None,
    config: str | Path = "interlink.yaml",
    full_refresh: bool = False,
    dry_run: bool = False,
    fail_on_record_errors: bool = True,
    concurrency: int = 1,
) -> dict[str, RunCounts]:
    """Run `pipelines` of the project at `config` (default: all of them) and return each
    one's `RunCounts`, by name. `config` is a path (text or a `Path`): a flow's parameters
    are stored by Prefect, so a loaded config, which holds secrets, is not taken here.

    Without `after` they run in the order given, each after the one before. `after` maps
    a pipeline to those it runs after (`{"invoices": ["orders"]}`); the order then follows
    these edges, and pipelines that do not depend on each other may run side by side, up
    to `concurrency` at once. A run with failed records counts as failed (it stops its
    dependants) unless `fail_on_record_errors` is False. The flow fails with
    `PipelinesFailedError` when a pipeline failed; an unknown name or a cycle fails it
    with a `ConfigError` before anything runs.
    """
    if isinstance(concurrency, bool) or concurrency < 1:
        raise ValueError(f"concurrency: expected a number of pipelines >= 1, got {concurrency!r}")
    project = load_project(config)
    steps = plan_order(list(project.config.pipelines), pipelines, after)
    logger = run_logger()
    logger.info(
        "running %s",
        ", then ".join(
            step.pipeline + (f" (after {', '.join(step.after)})" if step.after else "")
            for step in steps
        ),
    )
    options: dict[str, Any] = {
        "config": config,
        "full_refresh": full_refresh,
        "dry_run": dry_run,
        "fail_on_record_errors": fail_on_record_errors,
    }
    runs = _Schedule(steps, concurrency, options, fail_on_record_errors).run()
    ordered = {step.pipeline: runs[step.pipeline] for step in steps}
    publish_counts(
        ordered.values(),
        key=artifact_key("pipelines"),
        description="interlink pipelines of this flow run, in the order they were planned",
    )
    failed = [run for run in ordered.values() if not _passed(run, fail_on_record_errors)]
    if failed:
        raise PipelinesFailedError(ordered)
    return ordered


def _passed(run: RunCounts, fail_on_record_errors: bool) -> bool:
    if run.status == "completed_with_errors":
        return not fail_on_record_errors
    return run.status == "succeeded"


class _Schedule:
    """Starts each step once those it runs after have passed, up to `concurrency` at once."""

    def __init__(
        self,
        steps: list[Step],
        concurrency: int,
        options: dict[str, Any],
        fail_on_record_errors: bool,
    ) -> None:
        self.steps = steps
        self.concurrency = concurrency
        self.options = options
        self.strict = fail_on_record_errors
        self.runs: dict[str, RunCounts] = {}
        self.running: dict[PrefectFuture[RunCounts], str] = {}

    def run(self) -> dict[str, RunCounts]:
        while len(self.runs) < len(self.steps):
            self._start_ready()
            if not self.running:
                continue  # steps were marked not_run; look again
            done = next(as_completed(list(self.running)))
            name = self.running.pop(done)
            self.runs[name] = _outcome(done, name)
        return self.runs

    def _start_ready(self) -> None:
        started = set(self.runs) | set(self.running.values())
        for step in self.steps:
            if step.pipeline in started:
                continue
            waiting = [name for name in step.after if name not in self.runs]
            if waiting:
                continue
            stopped = [name for name in step.after if not _passed(self.runs[name], self.strict)]
            if stopped:
                first = self.runs[stopped[0]]
                self.runs[step.pipeline] = RunCounts.not_run(
                    step.pipeline, f"runs after {first.pipeline}, which {_ended(first)}"
                )
                run_logger().warning("%s: not run: runs after %s", step.pipeline, stopped[0])
                continue
            if len(self.running) >= self.concurrency:
                return
            future = run_pipeline.submit(step.pipeline, **self.options)
            self.running[future] = step.pipeline


def _ended(run: RunCounts) -> str:
    return "was not run" if run.status == "not_run" else run.status.replace("_", " ")


def _outcome(future: PrefectFuture[RunCounts], pipeline: str) -> RunCounts:
    """The counts of a finished `run_pipeline` task, failed or not."""
    future.wait()
    value = future.result(raise_on_failure=False)
    if isinstance(value, RunCounts):
        return value
    if isinstance(value, PipelineRunError):
        return value.counts
    if isinstance(value, BaseException):
        reason = f"{type(value).__name__}: {value}" if not str(value) else str(value)
        logging.getLogger("interlink.prefect").debug("%s failed", pipeline, exc_info=value)
        return RunCounts(pipeline=pipeline, status="failed", message=reason)
    state = future.state
    return RunCounts(pipeline=pipeline, status="failed", message=state.message or state.name)
