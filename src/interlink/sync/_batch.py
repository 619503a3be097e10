"""One batch of a run: records filtered and mapped (`filter_and_map`), then what the sink
sent committed with the failed records (`write_batch`), in the caller's transaction, and
what the pipeline owes its destination booked in the same one (`Owed`). Shared by reads
(`run_pipeline`) and runs by id (`run_records`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from interlink.connectors import Record
from interlink.store import Store

from ._owed import Owed
from ._sink import BatchCounts, Conn, Failure, Sink

__all__ = ["filter_and_map", "write_batch"]


def filter_and_map(
    records: list[Record],
    *,
    keep: Callable[[Record], bool],
    mapping: Callable[[Record], Record],
    sink: Sink,
    key: str,
    counts: dict[str, int],
) -> tuple[list[tuple[Record, Record]], list[Failure]]:
    """Filter and map a batch: the (source, mapped) pairs to write, and the records that
    failed, each with its step; records the filter leaves out are counted `skipped`."""
    items: list[tuple[Record, Record]] = []
    failed: list[Failure] = []
    for record in records:
        try:
            if not keep(record):
                counts["skipped"] += 1
                continue
        except Exception as exc:  # a filter callable that broke: the record fails alone
            failed.append((record.get(key), "filter", exc))
            continue
        try:
            mapped = mapping(record)
        except Exception as exc:
            failed.append((record.get(key), "map", exc))
            continue
        reason = sink.rejects(mapped)
        if reason is not None:
            failed.append((record.get(key), "write", KeyError(reason)))
            continue
        items.append((record, mapped))
    return items, failed


def write_batch(
    conn: Conn,
    store: Store,
    sink: Sink,
    name: str,
    run_id: int,
    sent: Any,
    failed: Sequence[Failure],
    counts: dict[str, int],
    *,
    owed: Owed | None = None,
    records: Sequence[Record] = (),
) -> BatchCounts:
    """In the caller's transaction, after `hold_lock`: the sink commits what it sent, its
    counts are added to `counts` (not `failed`: the caller counts those once the
    transaction committed), and every failed record is recorded with its step. With
    `owed` (every run that writes to the destination itself), the failed records are owed
    and the owed ones among the batch's source `records` that did not fail are settled."""
    batch = sink.commit(conn, sent, run_id)
    counts["created"] += batch.created
    counts["updated"] += batch.updated
    counts["unchanged"] += batch.unchanged
    counts["skipped"] += batch.skipped
    counts["deleted"] += batch.deleted
    for record_key, step, error in [*failed, *batch.failures]:
        store.record_error(
            conn,
            run_id,
            name,
            key=None if record_key is None else str(record_key),
            step=step,
            error=f"{type(error).__name__}: {error}",
        )
    if owed is not None:
        owed.book(conn, run_id, records, [*failed, *batch.failures])
    return batch
