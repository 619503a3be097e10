"""The job kinds every worker knows: `pipeline.run` and `noop`."""

from __future__ import annotations

from typing import Any

from interlink.oauth import open_catalog
from interlink.store import Store
from interlink.sync import RunResult, run_pipeline

from ._model import PIPELINE_KIND
from ._queue import JobContext, JobHandler

__all__ = ["BUILTIN_KINDS", "run_pipeline_job"]


def _progress(result: RunResult) -> dict[str, Any]:
    return {"run_id": result.run_id, "counts": dict(result.counts), "cursor": result.cursor}


async def run_pipeline_job(context: JobContext) -> dict[str, Any]:
    """Run the pipeline named in the job's args once; the result is the run's summary."""
    args = context.job.args
    store = context.services.get("store")
    if not isinstance(store, Store):
        raise RuntimeError("the worker gives pipeline jobs its Store as services['store']")
    async with open_catalog(context.config, store) as catalog:
        result = await run_pipeline(
            context.config,
            str(args["pipeline"]),
            store=store,
            catalog=catalog,
            full_refresh=bool(args.get("full_refresh", False)),
            dry_run=bool(args.get("dry_run", False)),
            limit=args.get("limit"),
            progress=lambda run: context.report(_progress(run)),
            should_stop=context.should_stop,
        )
    return {
        "run_id": result.run_id,
        "status": result.status,
        "counts": dict(result.counts),
        "errors": result.errors[:5],
        "elapsed": round(result.elapsed, 3),
        "resumed": result.resumed,
    }


async def noop(context: JobContext) -> None:
    """Does nothing: for checking that workers run, and for measuring the queue itself."""
    return None


BUILTIN_KINDS: dict[str, JobHandler] = {PIPELINE_KIND: run_pipeline_job, "noop": noop}
