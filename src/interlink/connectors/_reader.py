"""The read loop every resource shares: fetch, select records, paginate, yield pages.

Pages stream: at most `concurrency` pages are in flight and one is held by the caller, so
memory stays flat however long the read. The next page is requested before the current
one is handed over, so the server works on page n+1 while the caller writes page n. When
the paginator can list the remaining requests up front (offset or page number with a
known total), up to `concurrency` of them are fetched at once and still yielded in order;
if a page comes back different from the plan (the data changed under us), the plan is
dropped and the read goes on one page at a time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from interlink.errors import ApiError

from ._page import Fetched, Page, Record, RequestSpec
from ._paginators import BasePaginator
from ._selectors import MISSING, compile_selector

__all__ = ["CursorTracker", "Extractor", "Fetch", "read_pages"]

Fetch = Callable[[RequestSpec], Awaitable[Fetched]]

_TURNS_TO_SEND = 8

_ERROR_STATUSES = frozenset({"error", "fail", "failed", "failure"})


def _greater(value: Any, than: Any) -> bool:
    if isinstance(value, int | float) and isinstance(than, int | float):
        return value > than
    return str(value) > str(than)


class CursorTracker:
    """Follows the highest value of an incremental field (`updated_at`) across records.

    ISO-8601 timestamps in one format compare correctly as text; numbers compare as numbers.
    With `keep_from` set, records below that value are dropped (client-side filtering for
    APIs that cannot filter).
    """

    def __init__(self, field: str, start: Any = None, *, keep_from: Any = None) -> None:
        self.field = field
        self.value = start
        self.keep_from = keep_from
        self._select = compile_selector(field)

    def observe(self, records: list[Record]) -> list[Record]:
        select, keep_from = self._select, self.keep_from
        kept: list[Record] = [] if keep_from is not None else records
        best = self.value
        for record in records:
            value = select(record)
            if value is MISSING or value is None:
                if keep_from is not None:
                    kept.append(record)
                continue
            if keep_from is not None:
                if _greater(keep_from, value):
                    continue
                kept.append(record)
            if best is None or _greater(value, best):
                best = value
        self.value = best
        return kept


class Extractor:
    """Turns a fetched body into the list of records, or raises what the body reports."""

    def __init__(
        self,
        *,
        records: str | None,
        paginator: BasePaginator,
        error_path: str | None = None,
        error_value: Any = "error",
        error_message_path: str = "message",
        transform: Callable[[Any], Record] | None = None,
        resource: str = "",
    ) -> None:
        self._path = records
        self._select = compile_selector(records) if records else None
        self._paginator = paginator
        self._error = compile_selector(error_path) if error_path else None
        self._error_value = error_value
        self._error_message = compile_selector(error_message_path)
        self._transform = transform
        self._resource = resource

    def _raise(self, message: str, fetched: Fetched) -> None:
        response = fetched.response
        raise ApiError(
            message,
            method=response.request.method if response is not None else None,
            url=fetched.url,
            status_code=response.status_code if response is not None else None,
            request_id=response.headers.get("x-request-id") if response is not None else None,
        )

    def _check_envelope(self, fetched: Fetched) -> None:
        body = fetched.body
        if not isinstance(body, dict):
            return
        if self._error is not None:
            failed = self._error(body) == self._error_value
        else:
            status = body.get("status")
            failed = (
                (isinstance(status, str) and status.lower() in _ERROR_STATUSES)
                or body.get("success") is False
                or body.get("ok") is False
            )
        if failed:
            from interlink.http import error_message

            message = self._error_message(body)
            text = message if isinstance(message, str) and message else error_message(body)
            self._raise(f"the API reported an error: {text or 'no message'}", fetched)

    def __call__(self, fetched: Fetched) -> list[Record]:
        self._check_envelope(fetched)
        body = fetched.body
        if self._select is not None:
            value = self._select(body)
        else:
            value = self._paginator.default_records(body)
            if value is MISSING:
                if isinstance(body, list):
                    value = body
                elif isinstance(body, dict):
                    value = body.get("data", MISSING)
        if value is MISSING:
            keys = ", ".join(list(body)[:8]) if isinstance(body, dict) else type(body).__name__
            where = f"at {self._path!r}" if self._path else "(set `records:`)"
            self._raise(f"no records {where} in the response; it has: {keys}", fetched)
        if value is None:
            return []
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            self._raise(f"records at {self._path!r} are a {type(value).__name__}", fetched)
        if self._transform is not None:
            return [self._transform(item) for item in value]
        records: list[Record] = value
        return records


async def _let_requests_start() -> None:
    """Give freshly launched fetches a few loop turns to write their requests.

    The work after a launch (parsing a page, or the caller's processing of it) holds the
    event loop for milliseconds; a request not yet written would wait all that time and the
    server would sit idle. A handful of turns takes a request from its task's start to the
    socket write (aiohttp on a pooled connection); it costs microseconds.
    """
    for _ in range(_TURNS_TO_SEND):
        await asyncio.sleep(0)


async def read_pages(
    fetch: Fetch,
    paginator: BasePaginator,
    spec: RequestSpec,
    extract: Extractor,
    *,
    resume: dict[str, Any] | None = None,
    limit: int | None = None,
    concurrency: int = 1,
    tracker: CursorTracker | None = None,
) -> AsyncIterator[Page]:
    """Yield the pages of one read, in order; see the module docstring for the mechanics."""
    if resume:
        paginator.restore(resume, spec)
    else:
        paginator.init_request(spec)
    in_flight: deque[tuple[RequestSpec, asyncio.Task[Fetched]]] = deque()
    planned: deque[dict[str, Any]] | None = None
    emitted = 0
    number = 0

    def launch(request: RequestSpec) -> None:
        in_flight.append((request, asyncio.ensure_future(fetch(request))))

    def cancel_all() -> list[asyncio.Task[Fetched]]:
        tasks = [task for _, task in in_flight]
        for task in tasks:
            task.cancel()
        in_flight.clear()
        return tasks

    launch(spec.copy())
    try:
        while in_flight:
            _, task = in_flight.popleft()
            fetched = await task
            if not in_flight and limit is None:
                # Ask the server for the likely next page before parsing this one.
                guess = paginator.peek(fetched, spec)
                if guess is not None:
                    launch(guess)
                    await _let_requests_start()
            records = extract(fetched)
            paginator.update_state(fetched, records)
            if tracker is not None:
                records = tracker.observe(records)
            number += 1
            done = not paginator.has_next_page
            if limit is not None and emitted + len(records) >= limit:
                records = records[: limit - emitted]
                done = True
            emitted += len(records)
            checkpoint = paginator.state()
            if not done:
                paginator.update_request(spec)
                if in_flight:
                    head = in_flight[0][0]
                    if head.url != spec.url or head.params != spec.params:
                        await asyncio.gather(*cancel_all(), return_exceptions=True)
                        planned = None
                if not in_flight:
                    launch(spec.copy())
                if concurrency > 1:
                    if planned is None:
                        plan = paginator.plan()
                        # The plan's first entry is the page just launched.
                        planned = deque(plan[1:]) if plan else None
                    while planned and len(in_flight) < concurrency:
                        request = in_flight[-1][0].copy()
                        request.params.update(planned.popleft())
                        launch(request)
            if not done and in_flight:
                # The caller may hold the loop for a while (parsing, writing): get the
                # requests just launched onto the wire first.
                await _let_requests_start()
            yield Page(
                records=records,
                number=number,
                checkpoint=None if done else checkpoint,
                cursor=tracker.value if tracker is not None else None,
                url=fetched.url,
                done=done,
            )
            if done:
                break
    finally:
        await asyncio.gather(*cancel_all(), return_exceptions=True)
