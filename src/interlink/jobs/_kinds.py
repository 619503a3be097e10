"""The job kinds every worker knows: `pipeline.run` and `noop`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlink.connectors import Catalog
from interlink.errors import AccountsFailedError
from interlink.oauth import open_catalog
from interlink.store import Store
from interlink.sync import (
    ALL_ACCOUNTS,
    AccountRun,
    CatalogOpener,
    RunResult,
    acting_account,
    run_each_account,
    run_pipeline,
)

from ._model import PIPELINE_KIND
from ._queue import JobContext, JobHandler

__all__ = ["BUILTIN_KINDS", "run_pipeline_job"]


def _progress(result: RunResult) -> dict[str, Any]:
    return {"run_id": result.run_id, "counts": dict(result.counts), "cursor": result.cursor}


def _summary(result: RunResult) -> dict[str, Any]:
    summary = {
        "run_id": result.run_id,
        "status": result.status,
        "counts": dict(result.counts),
        "errors": result.errors[:5],
        "elapsed": round(result.elapsed, 3),
        "resumed": result.resumed,
    }
    if result.account:
        summary["account"] = result.account
    return summary


async def run_pipeline_job(context: JobContext) -> dict[str, Any]:
    """Run the pipeline named in the job's args once (for the args' `account`, else the
    pipeline's); the result is the run's summary. For every account (`*`) the accounts run
    one after another, the result lists each, and the job fails, after trying them all,
    when one of them failed."""
    args = context.job.args
    store = context.services.get("store")
    if not isinstance(store, Store):
        raise RuntimeError("the worker gives pipeline jobs its Store as services['store']")
    config, name = context.config, str(args["pipeline"])
    account = args.get("account")

    def catalogs(accounts: Mapping[str, str]) -> Catalog:
        return open_catalog(config, store, accounts=accounts)

    options: dict[str, Any] = {
        "full_refresh": bool(args.get("full_refresh", False)),
        "dry_run": bool(args.get("dry_run", False)),
        "limit": args.get("limit"),
        "should_stop": context.should_stop,
    }
    chosen = None if account is None else str(account)
    pipeline = config.pipelines.get(name)  # an unknown one: run_pipeline says so
    if pipeline is not None and acting_account(config, name, pipeline, chosen) == ALL_ACCOUNTS:
        return await _each_account(context, store, name, catalogs, options)
    result = await run_pipeline(
        config,
        name,
        store=store,
        catalogs=catalogs,
        account=chosen,
        progress=lambda run: context.report(_progress(run)),
        **options,
    )
    return _summary(result)


async def _each_account(
    context: JobContext,
    store: Store,
    name: str,
    catalogs: CatalogOpener,
    options: dict[str, Any],
) -> dict[str, Any]:
    done: list[dict[str, Any]] = []

    def progress(run: RunResult) -> None:
        context.report({"accounts": done, "account": run.account, **_progress(run)})

    def finished(run: AccountRun) -> None:
        done.append(run.summary())
        context.report({"accounts": list(done)})

    runs = await run_each_account(
        context.config,
        name,
        store=store,
        catalogs=catalogs,
        progress=progress,
        finished=finished,
        **options,
    )
    failed = [run for run in runs if run.failed]
    if failed:
        # The job's progress keeps each account's run; the error names the failed ones.
        reasons = "; ".join(f"{run.account}: {run.message}" for run in failed)
        raise AccountsFailedError(
            f"{len(failed)} of {len(runs)} accounts failed ({reasons}); the others ran",
            pipeline=name,
            causes=[run.error for run in failed if run.error is not None],
        )
    return {
        "status": "succeeded"
        if all(run.status == "succeeded" for run in runs if run.result)
        else "completed_with_errors",
        "accounts": [run.summary() for run in runs],
    }


async def noop(context: JobContext) -> None:
    """Does nothing: for checking that workers run, and for measuring the queue itself."""
    return None


BUILTIN_KINDS: dict[str, JobHandler] = {PIPELINE_KIND: run_pipeline_job, "noop": noop}
