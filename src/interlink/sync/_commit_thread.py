"""A batch committed in a thread, waited for to its end.

A run that `offload`s (a server's, a worker's) commits each batch in a thread, while its
event loop serves requests and fetches the next page. `to_the_end` awaits such a commit;
cancelled meanwhile (a job cancelled, a worker shutting down), it waits for the commit to
end before the cancellation goes on, so a run is never recorded as ended (its lock
released) while one of its transactions is still open, and the counts it records include
every batch that committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["to_the_end"]

_T = TypeVar("_T")


async def to_the_end(work: Awaitable[_T]) -> _T:
    """Await `work` (a batch committing in a thread); see the module docstring."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                continue
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what goes on
        raise
