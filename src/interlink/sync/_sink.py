"""The contract between the runner and a destination: the `Sink` protocol.

The runner drives every destination the same way and never asks which one it has:

```
with sink.transaction() as conn:      every transaction below (the sink says which connection)
sink.start(conn, plan, run_id)        first transaction of a read: staging, seen keys
per batch:
    sent = await sink.send(items)     writes that leave the database (API calls); none for SQL
    in ONE transaction (lock held):
        sink.commit(conn, sent, run_id) -> BatchCounts
        ... failed records, checkpoint, counters ...
        [last batch] sink.finish(conn, complete=, failed=, run_id=) -> rows deleted
sink.discard(conn)                    a trial's scratch table, or an abandoned read
```

A run by id (`run_records`) is not a read: it calls `start` with `WritePlan.by_id` set,
then `send` and `commit` per batch, and never `finish` or `discard`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from interlink.connectors import Record

__all__ = ["BatchCounts", "Conn", "Failure", "Sink", "WritePlan"]

Conn = Any
"""The connection of the sink's own `transaction()`: a `store.Connection` for a table,
SQLAlchemy's for an API destination (its bindings are SQLAlchemy statements); the store's
methods take either."""

Failure = tuple[Any, str, BaseException]
"""A record that failed: (its source key, the step, the error)."""


@dataclass(frozen=True)
class WritePlan:
    """How this run writes: decided by the runner from the pipeline, its state and flags."""

    full: bool
    """The read covers the whole source, so what it does not see is gone from it."""
    staged: bool
    """Rows go to a staging table swapped in for the destination when the read completes."""
    resumed: bool
    """The read continues an interrupted one (its staging or seen keys are kept)."""
    trial: bool = False
    """A trial (`--limit`): never truncates, never deletes, never moves the state."""
    by_id: bool = False
    """A run by id (`interlink run --id`): the records go into the destination itself; no
    staging, scratch or seen-keys table is made, used or dropped, nothing is deleted by
    absence, and the state is left as it was."""


@dataclass
class BatchCounts:
    """What one batch did at the destination."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    deleted: int = 0
    failures: list[Failure] = field(default_factory=list)


class Sink(Protocol):
    """A destination the runner writes batches to; see the module docstring."""

    verbatim: bool
    """True when records copied unchanged may be handed over as the page's own dicts."""
    target: str
    """What the summary calls the destination (`table customers`, `commerce.customers`)."""

    def rejects(self, record: Record) -> str | None:
        """Why this mapped record cannot be written (a missing key), or None."""

    def any_rejected(self, records: Sequence[Record]) -> bool:
        """True when some record of the batch would be rejected (a fast batch check)."""

    def reads_from(self, field: str | None, since: Any, upto: Any = None) -> None:
        """Before the read: it starts at cursor `since` of the source's `field` (None: a
        whole read), so the records from that value to `upto` (the highest the read before
        saw; None: `since` alone) may have been read by the read before."""

    def transaction(self) -> AbstractContextManager[Conn]:
        """A transaction of the store on the connection this sink writes with; the runner
        commits each batch, its failed records and the checkpoint in one of them."""

    def start(self, conn: Conn, plan: WritePlan, run_id: int) -> None:
        """In the first transaction of the run: prepare what the plan needs."""

    async def send(self, items: list[tuple[Record, Record]]) -> Any:
        """Do the writes that leave the database, every one acknowledged before returning;
        the result goes to `commit`."""

    def commit(self, conn: Conn, sent: Any, run_id: int) -> BatchCounts:
        """In the batch's transaction: write (or record) what `send` did."""

    def finish(self, conn: Conn, *, complete: bool, failed: int, run_id: int) -> int:
        """In the last batch's transaction: swap the staging table in, apply deletions
        (only when `complete`, and by absence only when no record `failed`); returns the
        number of rows deleted or marked deleted."""

    def leftovers(self, conn: Conn, *, complete: bool) -> list[str]:
        """In the last batch's transaction, after `finish`: what the run leaves that the
        operator should know of (warnings for the run's summary)."""

    def discard(self, conn: Conn) -> None:
        """Drop what a trial or an abandoned read left (scratch tables)."""
