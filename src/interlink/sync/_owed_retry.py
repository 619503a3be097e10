"""After a read: the records the pipeline owed before it that the read did not meet
(`Owed.left_over`), since an incremental read brings a record again only when it changes.

- A whole read that completed did not find them: they are gone from the source, and owed
  no more (a warning names them).
- Otherwise up to the pipeline's `retry_failed` of them (those tried longest ago first)
  are fetched again by id and written, in the same run and under its lock (`import_ids`):
  each one written is settled, each one that fails again is a failed record of this run.
- Those not fetched (beyond `retry_failed`, or all of them when the source cannot fetch a
  record by id) are failed records of this run too (step `earlier`, with the run and error
  they last failed with), so the run ends `completed_with_errors` until a run writes them,
  a whole read no longer finds them, or someone gives them up (`interlink failed forget`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import ConfigError
from interlink.store import Store, list_outstanding

from ._lease import LeaseKeeper
from ._open_sink import pipeline_config
from ._owed import Owed
from ._records import fetchable_by_id, import_ids
from ._run_record import Progress, RunResult

__all__ = ["pay_owed"]

_SHOWN = 10
_RECORDED = 100
"""Owed records not fetched again that a run records one by one (the rest are counted)."""


async def pay_owed(
    config: InterlinkConfig,
    result: RunResult,
    owed: Owed,
    catalog: Catalog,
    *,
    store: Store,
    keeper: LeaseKeeper,
    whole_read: bool,
    lease: float,
    offload: bool,
    should_stop: Callable[[], bool] | None,
    progress: Progress | None,
) -> None:
    """Settle what run `result` leaves owed after its read (see the module docstring);
    `whole_read`: the read covered the whole source and completed. The run's warnings
    say what it did, and what it leaves owed."""
    name = result.pipeline
    left = owed.left_over()
    if left and whole_read:
        await asyncio.to_thread(_give_up, store, owed, result, left, lease)
        result.warnings.append(
            f"given up: {_records(len(left))} that failed in earlier runs and that this "
            f"whole read no longer found at the source ({_shown(left)})"
        )
        left = []
    limit, why = _retry_limit(config, name)
    fetch, rest = left[:limit], left[limit:]
    if fetch:
        result.warnings.append(
            f"fetched again by id: {_records(len(fetch))} that failed in earlier runs "
            f"({_shown(fetch)})"
        )
        await import_ids(
            config,
            result,
            fetch,
            catalog,
            store=store,
            keeper=keeper,
            owed=owed,
            offload=offload,
            should_stop=should_stop,
            progress=progress,
            dry_run=False,
            lease=lease,
        )
    if rest:
        await asyncio.to_thread(_still_owed, store, result, rest, lease)
        result.warnings.append(
            f"not fetched again: {_records(len(rest))} that failed in earlier runs, as "
            f"{why}; they come back when they change at the source, with `interlink run "
            f"{name} --full-refresh`, or by id once the source allows it; `interlink failed "
            f"forget {name} KEY...` gives them up ({_shown(rest)})"
        )
    result.warnings.extend(owed.note())


def _retry_limit(config: InterlinkConfig, name: str) -> tuple[int, str]:
    """How many owed records a run of pipeline `name` fetches again, and why no more."""
    settings = pipeline_config(config, name)
    try:
        fetchable_by_id(config, name, settings)
    except ConfigError as exc:
        cause = str(exc.args[0]).split(";")[0]
        return 0, f"they cannot be fetched again by id ({cause})"
    limit = settings.retry_failed
    return limit, f"the pipeline's retry_failed ({limit}) fetches no more in one run"


def _give_up(store: Store, owed: Owed, result: RunResult, keys: list[str], lease: float) -> None:
    assert result.run_id is not None
    with store.begin() as conn:
        store.hold_lock(conn, result.key, result.run_id, lease)
        owed.drop(conn, keys)


def _still_owed(store: Store, result: RunResult, keys: list[str], lease: float) -> None:
    """Count the owed records `keys` failed in this run; the first `_RECORDED` of them are
    recorded with the run and error they last failed with (step `earlier`; all of them
    are in `interlink failed list`). They stay owed as they were."""
    run_id = result.run_id
    assert run_id is not None
    counts = dict(result.counts)
    with store.begin() as conn:
        store.hold_lock(conn, result.key, run_id, lease)
        rows = list_outstanding(conn, result.key, keys[:_RECORDED])
        errors = []
        for row in rows:
            error = f"failed in run {row.run_id} ({row.step}: {row.error}) and not written since"
            store.record_error(
                conn, run_id, result.key, key=row.record_key, step="earlier", error=error
            )
            errors.append((row.record_key, error))
        counts["failed"] += len(keys)
        store.save_counts(conn, run_id, counts)
    for record_key, error in errors:
        result.note_error(record_key, "earlier", error)
    result.counts["failed"] += len(keys) - len(errors)


def _records(count: int) -> str:
    return f"{count} record" + ("" if count == 1 else "s")


def _shown(keys: list[str]) -> str:
    more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more
