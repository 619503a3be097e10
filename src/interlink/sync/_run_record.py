"""A run's record: what it did (`RunResult`), and its row in interlink_runs, opened under
the pipeline's lock and closed with how the run ended (`recorded_run`).

```python
result = RunResult(pipeline="customers")
async with recorded_run(store, result, lease=LOCK_LEASE):
    ...                      # the run; its outcome sets result.status
```
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from interlink.errors import InterlinkError, JobCancelledError
from interlink.store import COUNTERS, Store

from ._accounts import state_key

__all__ = ["Progress", "RunResult", "cancelled_reason", "recorded_run"]

Progress = Callable[["RunResult"], None]
"""Called after every batch with the run so far (the CLI draws its progress bar from it)."""

_ERRORS_KEPT = 20


@dataclass
class RunResult:
    """What a run did: its counters, its first errors, and how it ended."""

    pipeline: str
    account: str = ""
    """The connected account the run acted for; '' for the default account."""
    run_id: int | None = None
    status: str = "running"
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    elapsed: float = 0.0
    resumed: bool = False
    dry_run: bool = False
    trial: bool = False
    """A `--limit` run: it wrote (see `wrote_to`) but moved no cursor and deleted nothing."""
    wrote_to: str | None = None
    """Where the batches went: the destination, or a trial's scratch table (dropped)."""
    cursor: Any = None
    message: str | None = None
    would_write: int = 0
    ids: list[str] | None = None
    """A run by id (`run_records`): the ids asked for; None for a run that reads."""

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def key(self) -> str:
        """What the run's state, lock and run row are kept under: `NAME`, or
        `NAME@ACCOUNT` for a connected account (`state_key`)."""
        return state_key(self.pipeline, self.account)

    def note_error(self, key: Any, step: str, error: BaseException | str) -> None:
        self.counts["failed"] += 1
        if len(self.errors) < _ERRORS_KEPT:
            text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            self.errors.append(
                {"key": None if key is None else str(key), "step": step, "error": text}
            )


def cancelled_reason(exc: BaseException) -> str:
    """Why a run was stopped from outside: the message its task was cancelled with
    (`task.cancel("interrupted by Ctrl-C (SIGINT)")`), or a plain description."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by Ctrl-C (SIGINT) before it finished"
    given = " ".join(str(arg) for arg in exc.args if arg)
    return given or "stopped before it finished (its task was cancelled: a shutdown or Ctrl-C)"


@asynccontextmanager
async def recorded_run(
    store: Store,
    result: RunResult,
    *,
    lease: float,
    full_refresh: bool = False,
    dry_run: bool = False,
    trial: bool = False,
) -> AsyncIterator[None]:
    """Take the pipeline's lock (its account's: `result.key`) for a new run row
    (PipelineLockedError when another run holds it), and on the way out record how the
    run ended and release the lock.

    The block's outcome sets the status: `succeeded`, or `completed_with_errors` when a
    record failed; `cancelled` for JobCancelledError, and for a cancelled task or Ctrl-C
    (with the reason the task was cancelled with, `cancelled_reason`) and for any other
    BaseException that is not an Exception (SystemExit, a framework's termination signal);
    `failed` for any other exception. The exception goes on up. A run that did not
    succeed always has a message.
    """
    name = result.key
    result.run_id = await asyncio.to_thread(
        store.begin_run,
        name,
        full_refresh=full_refresh,
        dry_run=dry_run,
        trial=trial,
        lease=lease,
    )
    try:
        yield
    except JobCancelledError as exc:
        result.status = "cancelled"
        result.message = str(exc)
        raise
    except (asyncio.CancelledError, KeyboardInterrupt) as exc:
        # Ctrl-C (`interlink run` cancels its task with the reason), SIGTERM, or the worker
        # running it shutting down: stopped from outside, not failed.
        result.status = "cancelled"
        result.message = cancelled_reason(exc)
        raise
    except Exception as exc:
        result.status = "failed"
        text = str(exc).strip()
        if not isinstance(exc, InterlinkError) or not text:
            text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        result.message = text
        raise
    except BaseException as exc:
        # SystemExit, or a framework's own signal (Prefect raises a BaseException on
        # SIGTERM): the run was stopped from outside, as by Ctrl-C, not failed.
        result.status = "cancelled"
        text = str(exc).strip()
        result.message = f"stopped by {type(exc).__name__}" + (f": {text}" if text else "")
        raise
    else:
        result.status = "succeeded" if not result.counts["failed"] else "completed_with_errors"
    finally:
        result.elapsed = time.perf_counter() - result.started
        # A run stopped before its end may be one batch short in `counts` (a signal
        # between a commit and the counting): the store keeps what committed.
        stopped = result.status not in ("succeeded", "completed_with_errors")
        recorded = await asyncio.to_thread(
            store.finish_run,
            name,
            result.run_id,
            status=result.status if result.status != "running" else "failed",
            counts=result.counts,
            errors=result.errors,
            message=result.message,
            resumed=result.resumed,
            warnings=result.warnings,
            stopped=stopped,
        )
        result.counts.update(recorded)
