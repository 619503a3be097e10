"""What a pipeline run did, as a Prefect task hands it on: `RunCounts`.

A task's result travels between tasks and may be pickled or persisted by Prefect, so it
is a small frozen value, not interlink's live `RunResult` (which holds a timer and a list
the runner keeps filling):

```python
counts = run_pipeline("customers")
print(counts.created, counts.updated, counts.failed)   # typed, picklable
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from interlink.sync import AccountRun, RunResult

__all__ = ["COUNT_FIELDS", "RunCounts"]

COUNT_FIELDS = ("pages", "read", "created", "updated", "unchanged", "deleted", "failed", "skipped")
"""The counters of a run, in interlink's order (`interlink.store.COUNTERS`)."""

_ERRORS_KEPT = 5


@dataclass(frozen=True)
class RunCounts:
    """The counts of one pipeline run and how it ended.

    `status` is interlink's: `succeeded`, `completed_with_errors` (some records failed),
    `failed`, `cancelled`; for a run that never started, `not_run`. `accounts` holds one
    `RunCounts` per connected account for a pipeline run for every account (`"*"`);
    the counters are then their sums. `job_id` is set when the run was a job on a remote
    `interlink serve`.
    """

    pipeline: str
    status: str
    pages: int = 0
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    skipped: int = 0
    elapsed: float = 0.0
    """Seconds the run took."""
    run_id: int | None = None
    account: str = ""
    message: str | None = None
    """Why the run failed, was cancelled or was not run."""
    errors: tuple[Mapping[str, Any], ...] = ()
    """The first failed records: `{"key", "step", "error"}` each."""
    warnings: tuple[str, ...] = ()
    accounts: tuple[RunCounts, ...] = field(default=())
    job_id: int | None = None

    @property
    def ok(self) -> bool:
        """Every record went through: the run succeeded."""
        return self.status == "succeeded"

    @property
    def counts(self) -> dict[str, int]:
        """The counters as a dict, in interlink's order."""
        return {name: int(getattr(self, name)) for name in COUNT_FIELDS}

    @property
    def label(self) -> str:
        """`customers`, or `customers@acme` for a connected account's run."""
        return f"{self.pipeline}@{self.account}" if self.account else self.pipeline

    def reason(self) -> str:
        """Why the run did not go through, in one line (interlink's own message)."""
        if self.message:
            return self.message
        if self.status == "completed_with_errors":
            first = "; ".join(
                f"{error.get('key')} ({error.get('step')}): {error.get('error')}"
                for error in self.errors[:3]
            )
            return f"{self.failed:,} records failed" + (f", first: {first}" if first else "")
        return self.status

    def summary(self) -> str:
        """One line for a log: the counters that moved and the time."""
        moved = ", ".join(
            f"{value:,} {name}" for name, value in self.counts.items() if value and name != "pages"
        )
        return f"{self.label}: {self.status}, {moved or 'nothing read'} in {self.elapsed:.2f} s"

    def rows(self) -> list[dict[str, Any]]:
        """The run as rows of a table: one, or one per account."""
        runs: Sequence[RunCounts] = self.accounts or (self,)
        return [run._row() for run in runs]

    def _row(self) -> dict[str, Any]:
        return {
            "pipeline": self.label,
            "status": self.status,
            **{name: value for name, value in self.counts.items() if name != "pages"},
            "seconds": round(self.elapsed, 2),
            "run": self.run_id if self.run_id is not None else "",
            "reason": "" if self.ok else self.reason(),
        }

    # -- building one ---------------------------------------------------------------------

    @classmethod
    def from_result(cls, result: RunResult) -> RunCounts:
        """From the `RunResult` interlink's runner filled."""
        return cls(
            pipeline=result.pipeline,
            status=result.status if result.status != "running" else "failed",
            **_counters(result.counts),
            elapsed=round(result.elapsed, 3),
            run_id=result.run_id,
            account=result.account,
            message=result.message,
            errors=tuple(dict(error) for error in result.errors[:_ERRORS_KEPT]),
            warnings=tuple(result.warnings),
        )

    @classmethod
    def from_accounts(cls, pipeline: str, runs: Sequence[AccountRun]) -> RunCounts:
        """From a run for every connected account (`run_each_account`): the sums, and
        each account's own counts in `accounts`."""
        each = tuple(_account_counts(pipeline, run) for run in runs)
        failed = [run for run in each if run.status in ("failed", "cancelled")]
        if failed:
            status = "failed"
            message = "; ".join(f"{run.account}: {run.reason()}" for run in failed)
            message = f"{len(failed)} of {len(each)} accounts failed ({message})"
        else:
            ran = [run for run in each if run.status != "skipped"]
            status = "succeeded" if all(run.ok for run in ran) else "completed_with_errors"
            message = None
        return cls(
            pipeline=pipeline,
            status=status,
            **_sums(each),
            elapsed=round(sum(run.elapsed for run in each), 3),
            account="*",
            message=message,
            errors=tuple(error for run in each for error in run.errors)[:_ERRORS_KEPT],
            warnings=tuple(warning for run in each for warning in run.warnings),
            accounts=each,
        )

    @classmethod
    def from_job(cls, job: Mapping[str, Any]) -> RunCounts:
        """From a job of the jobs API (`JobsClient.get_job`): a finished `pipeline.run`
        job's result, or why it failed."""
        job_id = job.get("id")
        pipeline = str(job.get("pipeline") or (job.get("args") or {}).get("pipeline") or "")
        result = job.get("result") if isinstance(job.get("result"), Mapping) else None
        status = str(job.get("status"))
        if status != "completed" or result is None:
            # failed or cancelled: the job's error is the reason; its progress the counts.
            progress = job.get("progress") if isinstance(job.get("progress"), Mapping) else {}
            reason = job.get("error") or f"the job ended {status}"
            return cls(
                pipeline=pipeline,
                status="cancelled" if status == "cancelled" else "failed",
                **_counters((progress or {}).get("counts")),
                run_id=_int((progress or {}).get("run_id")),
                message=f"job {job_id}: {reason}",
                job_id=_int(job_id),
            )
        if "accounts" in result:
            runs = tuple(
                cls(
                    pipeline=pipeline,
                    status=str(each.get("status")),
                    **_counters(each.get("counts")),
                    run_id=_int(each.get("run_id")),
                    account=str(each.get("account", "")),
                    message=each.get("message"),
                )
                for each in result["accounts"]
            )
            return cls(
                pipeline=pipeline,
                status=str(result.get("status")),
                **_sums(runs),
                account="*",
                accounts=runs,
                job_id=_int(job_id),
            )
        return cls(
            pipeline=pipeline,
            status=str(result.get("status")),
            **_counters(result.get("counts")),
            elapsed=float(result.get("elapsed") or 0.0),
            run_id=_int(result.get("run_id")),
            account=str(result.get("account", "")),
            errors=tuple(dict(error) for error in result.get("errors") or ()),
            job_id=_int(job_id),
        )

    @classmethod
    def not_run(cls, pipeline: str, reason: str) -> RunCounts:
        """A pipeline the flow did not run (one it runs after failed)."""
        return cls(pipeline=pipeline, status="not_run", message=reason)


def _counters(counts: Any) -> dict[str, Any]:
    given = counts if isinstance(counts, Mapping) else {}
    return {name: int(given.get(name) or 0) for name in COUNT_FIELDS}


def _sums(runs: Sequence[RunCounts]) -> dict[str, Any]:
    return {name: sum(getattr(run, name) for run in runs) for name in COUNT_FIELDS}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def _account_counts(pipeline: str, run: AccountRun) -> RunCounts:
    if run.result is not None:
        counts = RunCounts.from_result(run.result)
        if run.status != counts.status or (run.message and not counts.message):
            return replace(counts, status=run.status, message=run.message or counts.message)
        return counts
    return RunCounts(pipeline=pipeline, status=run.status, account=run.account, message=run.message)
