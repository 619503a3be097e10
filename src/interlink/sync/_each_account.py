"""`account: "*"`: run a pipeline once for every connected account, one after another.

```python
runs = await run_each_account(
    config, "customers", store=store,
    catalogs=lambda accounts: open_catalog(config, store, accounts=accounts),
)
failed = [run.account for run in runs if run.failed]
```

The accounts are those with a stored token for the source's connection, in name order
(the default account '' is not one of them). Each account's run is a run of its own: its
lock, state and run row (`NAME@ACCOUNT`). An account switched off (`interlink connections
disable --account`) is skipped, and says so; an account whose run fails (it must be
connected again, its API failed) does not stop the others. Before anything runs, every
account's table is worked out, and two accounts whose tables would be one are refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interlink.config import InterlinkConfig
from interlink.errors import (
    ConfigError,
    ConnectionDisabledError,
    InterlinkError,
    JobCancelledError,
    SyncError,
)
from interlink.store import LOCK_LEASE, Store, disabled

from ._accounts import (
    CatalogOpener,
    account_table,
    acting_account,
    connected_accounts,
    source_connection,
)
from ._open_sink import pipeline_config
from ._run_record import Progress, RunResult
from ._runner import run_into

__all__ = ["AccountRun", "run_each_account"]

SKIPPED = "skipped"


@dataclass
class AccountRun:
    """How one account's run of an `account: "*"` pipeline ended."""

    account: str
    status: str
    """The run's status (`succeeded`, `completed_with_errors`, `failed`, `cancelled`), or
    `skipped` for an account switched off."""
    result: RunResult | None = None
    """The run; None for a skipped account."""
    message: str | None = None
    """Why it failed or was skipped."""
    error: BaseException | None = None
    """What the failed run raised."""

    @property
    def failed(self) -> bool:
        """The run did not go through (failed or cancelled); a skipped account has not."""
        return self.status in ("failed", "cancelled")

    @property
    def ok(self) -> bool:
        """The account went through whole: succeeded, or skipped on purpose."""
        return self.status in ("succeeded", SKIPPED)

    def summary(self) -> dict[str, Any]:
        """The account's run as a job's result lists it (JSON)."""
        result = self.result
        return {
            "account": self.account,
            "status": self.status,
            "run_id": None if result is None else result.run_id,
            "counts": None if result is None else dict(result.counts),
            "message": self.message,
        }


def _check_tables(config: InterlinkConfig, name: str, accounts: list[str], dialect: str) -> None:
    """Every account's table, worked out before anything runs: ConfigError for one the
    destination refuses, and for two accounts that would share one."""
    table = pipeline_config(config, name).destination.sql
    if table is None:
        return
    owners: dict[str, str] = {}
    for account in accounts:
        resolved = account_table(name, table, account, dialect=dialect)
        other = owners.setdefault(resolved, account)
        if other != account:
            raise ConfigError(
                f"accounts {other!r} and {account!r} would both write the table "
                f"{resolved!r} (an account's name in a table is lower-cased, and characters "
                "other than letters, digits and '_' become '_'); nothing was run",
                key=f"pipelines.{name}.destination",
            )


def _refuse_switched_off(store: Store, connections: list[str]) -> None:
    """ConnectionDisabledError when a connection the pipeline uses is switched off whole."""
    for connection in connections:
        switch = disabled(store, connection, "")
        if switch is not None:
            raise ConnectionDisabledError(connection, reason=switch.reason)


async def run_each_account(
    config: InterlinkConfig,
    name: str,
    *,
    store: Store,
    catalogs: CatalogOpener,
    full_refresh: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
    finished: Callable[[AccountRun], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    lease: float = LOCK_LEASE,
    offload: bool = True,
) -> list[AccountRun]:
    """Run pipeline `name` for every connected account of its source, one after another;
    one `AccountRun` per account, in name order.

    The options are `run_pipeline`'s, for each run; `finished` is called after each
    account. A failed account's error is kept in its `AccountRun` and the next account
    runs; a cancelled run (`should_stop`, `JobCancelledError`) stops them all and goes up.
    SyncError when no account is connected; ConnectionDisabledError when the source's (or
    the API destination's) connection is switched off; ConfigError, before anything runs,
    for tables the destination refuses or two accounts sharing one.
    """
    pipeline = pipeline_config(config, name)
    acting_account(config, name, pipeline, "*")  # checks the source and the table
    connection = source_connection(pipeline)
    accounts = await asyncio.to_thread(connected_accounts, store, connection)
    if not accounts:
        raise SyncError(
            f"account '*' runs for every connected account of {connection!r}, and none is "
            f"connected; `interlink connect {connection} --account NAME` connects one",
            pipeline=name,
        )
    used = [connection]
    if pipeline.destination.resource is not None:
        used.append(pipeline.destination.resource.partition(".")[0])
    await asyncio.to_thread(_refuse_switched_off, store, used)
    _check_tables(config, name, accounts, store.engine.dialect.name)

    runs: list[AccountRun] = []
    for account in accounts:
        if should_stop is not None and should_stop():
            raise JobCancelledError(
                f"stopped before account {account!r}; "
                f"{len(runs)} of {len(accounts)} accounts had run"
            )
        switch = await asyncio.to_thread(disabled, store, connection, account)
        if switch is not None:
            because = f": {switch.reason}" if switch.reason else ""
            done = AccountRun(account, SKIPPED, message=f"switched off{because}")
        else:
            done = await _one(
                config,
                name,
                account,
                store=store,
                catalogs=catalogs,
                full_refresh=full_refresh,
                dry_run=dry_run,
                limit=limit,
                progress=progress,
                should_stop=should_stop,
                lease=lease,
                offload=offload,
            )
        runs.append(done)
        if finished is not None:
            finished(done)
        if done.status == "cancelled":
            assert done.error is not None
            raise done.error
    return runs


async def _one(
    config: InterlinkConfig,
    name: str,
    account: str,
    *,
    store: Store,
    catalogs: CatalogOpener,
    full_refresh: bool,
    dry_run: bool,
    limit: int | None,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    lease: float,
    offload: bool,
) -> AccountRun:
    """One account's run; its failure is returned, not raised (cancellation aside)."""
    result = RunResult(
        pipeline=name, account=account, dry_run=dry_run, trial=limit is not None and not dry_run
    )
    try:
        await run_into(
            config,
            result,
            store=store,
            catalog=None,
            catalogs=catalogs,
            full_refresh=full_refresh,
            dry_run=dry_run,
            limit=limit,
            progress=progress,
            should_stop=should_stop,
            lease=lease,
            offload=offload,
        )
    except Exception as exc:  # this account's alone: the next one runs
        message = str(exc) if isinstance(exc, InterlinkError) else f"{type(exc).__name__}: {exc}"
        cancelled = isinstance(exc, JobCancelledError) or result.status == "cancelled"
        status = "cancelled" if cancelled else "failed"
        return AccountRun(account, status, result, message=message, error=exc)
    return AccountRun(account, result.status, result)
