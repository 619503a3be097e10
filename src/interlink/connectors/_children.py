"""Fan a child resource out over its parent's records, with bounded concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from ._cursor import higher_cursor
from ._page import Page, Record

__all__ = ["fan_out"]

_DONE = object()


async def _produce(
    parents: list[Record],
    child_pages: Callable[[Record], AsyncIterator[Page]],
    stamp: Callable[[Record, Record], Record],
    queue: asyncio.Queue[Any],
    concurrency: int,
) -> None:
    """Read the children of `parents`, `concurrency` at a time, into `queue`; then _DONE."""
    gate = asyncio.Semaphore(concurrency)

    async def read_one(parent: Record) -> None:
        async with gate:
            async for page in child_pages(parent):
                page.records = [stamp(parent, record) for record in page.records]
                await queue.put(page)

    try:
        async with asyncio.TaskGroup() as group:
            for parent in parents:
                group.create_task(read_one(parent))
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # handed to the consumer, which raises it
        await queue.put(exc)
        return
    await queue.put(_DONE)


async def fan_out(
    parent_pages: AsyncIterator[Page],
    child_pages: Callable[[Record], AsyncIterator[Page]],
    stamp: Callable[[Record, Record], Record],
    *,
    concurrency: int,
    limit: int | None = None,
    resume: dict[str, Any] | None = None,
    field: str = "the incremental field",
) -> AsyncIterator[Page]:
    """Yield the child pages of every parent, then a marker page per parent page.

    The children of one parent page are read `concurrency` parents at a time; their pages
    are yielded as they arrive (bounded queue, so memory stays flat). Every page yielded
    while the children of parent page N are read carries the checkpoint of the position
    before parent page N (`resume`, or `{}`: "under way, start again from the beginning"):
    a read stopped there re-reads parent page N's children, which sinks upsert by key, and
    skips nothing. After the last child of a parent page, an empty page carries that
    parent page's own checkpoint. `parent_pages` must be the parent read from `resume`.
    """
    number = 0
    emitted = 0
    best: Any = None
    before: dict[str, Any] = dict(resume) if resume else {}
    complete = True
    pending: list[str] = []  # warnings of pages not handed over (empty ones)
    try:
        async for parent_page in parent_pages:
            pending.extend(parent_page.warnings)
            complete = complete and parent_page.complete
            queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(2, concurrency * 2))
            producer = asyncio.create_task(
                _produce(list(parent_page.records), child_pages, stamp, queue, concurrency)
            )
            try:
                while True:
                    item = await queue.get()
                    if item is _DONE:
                        break
                    if isinstance(item, BaseExceptionGroup):
                        # Several children failed alike; the first one speaks for them.
                        raise item.exceptions[0]
                    if isinstance(item, BaseException):
                        raise item
                    page: Page = item
                    best = higher_cursor(best, page.cursor, field=field)
                    pending.extend(page.warnings)
                    complete = complete and page.complete
                    records = page.records
                    if not records:
                        continue  # a parent without children: nothing to hand over
                    warnings, pending = pending, []
                    if limit is not None and emitted + len(records) >= limit:
                        records = records[: limit - emitted]
                        number += 1
                        yield Page(records, number, None, best, page.url, True, complete, warnings)
                        return
                    emitted += len(records)
                    number += 1
                    yield Page(records, number, dict(before), best, page.url, warnings=warnings)
            finally:
                if not producer.done():
                    producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)
            number += 1
            warnings, pending = pending, []
            yield Page(
                [],
                number,
                parent_page.checkpoint,
                best,
                parent_page.url,
                done=parent_page.done,
                complete=complete if parent_page.done else True,
                warnings=warnings,
            )
            if parent_page.checkpoint is not None:
                before = parent_page.checkpoint
    finally:
        aclose = getattr(parent_pages, "aclose", None)
        if aclose is not None:
            await aclose()
