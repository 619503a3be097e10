"""The read loop every resource shares: fetch, select records, paginate, yield pages.

Pages stream: at most `concurrency` pages are in flight and one is held by the caller, so
memory stays flat however long the read. The next page is requested before the current
one is handed over, so the server works on page n+1 while the caller writes page n. When
the paginator can list the remaining requests up front (offset or page number with a
known total), up to `concurrency` of them are fetched at once and still yielded in order;
if a page comes back different from the plan (the data changed under us), the plan is
dropped and the read goes on one page at a time.

Every page goes through the checks of `_totals.ReadWatch` (a page larger than asked, a
page that repeats the previous one, and at the end the totals the API announced), and
through the incremental `CursorTracker` (`_cursor`). Each checkpoint also says how many
records arrived before it (`received`), so a resumed read still knows how far it got.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from interlink.errors import ApiError, PaginationError

from ._api_clock import behind_by, clock_note
from ._cursor import READ_FIELDS, CursorTracker
from ._overlap import OVERLAP_KEYS, PageOverlap
from ._page import Fetched, Page, Record, RequestSpec
from ._paginator_base import BasePaginator, as_int
from ._selectors import MISSING, compile_selector, null_on_the_way
from ._totals import OnTotalMismatch, ReadWatch

__all__ = ["Extractor", "Fetch", "Follow", "read_pages"]

Fetch = Callable[[RequestSpec], Awaitable[Fetched]]

Follow = Callable[[str], str]
"""Vets the URL of every request a read is about to send: returns it as it may be sent
(the connection's credentials taken out) or raises PaginationError (another origin)."""

_TURNS_TO_SEND = 8

_ERROR_STATUSES = frozenset({"error", "fail", "failed", "failure"})


_NO_ERROR = frozenset({"", "0", "ok", "none", "null", "false", "success", "no"})


def _said(error: Any) -> bool:
    """Whether an envelope's `error` reports one: true, a message (not "0", "OK"...), a
    list of them, or an object with a message or a code other than 0."""
    if isinstance(error, bool):
        return error
    if isinstance(error, str):
        return error.strip().lower() not in _NO_ERROR
    if isinstance(error, list):
        return any(_said(item) or isinstance(item, dict) and bool(item) for item in error)
    if isinstance(error, dict):
        code = error.get("code")
        said = any(
            isinstance(error.get(key), str) and error[key].strip()
            for key in ("message", "msg", "detail", "description", "error")
        )
        return said or (code not in (None, 0, "0", "", 200, "200", "OK", "ok"))
    return False


def _records_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _wraps(value: dict[str, Any]) -> bool:
    """Whether an object holds a list of objects: a wrapper of records."""
    return any(_records_list(v) for v in value.values())


def _http_error(code: Any) -> bool:
    """An envelope's `code` or `status` that is an HTTP error's (400-599), as a number."""
    return type(code) is int and 400 <= code <= 599


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
        redact_url: Callable[[str], str] | None = None,
        nulls_are_empty: bool = False,
    ) -> None:
        self._path = records
        self._nulls_are_empty = nulls_are_empty
        """A null on the way along `records` is an empty page (SOAP: zeep's empty list);
        elsewhere it may be an error reply (`{"code": 500, "data": null}`), and fails."""
        self._select = compile_selector(records) if records else None
        self._paginator = paginator
        self._error = compile_selector(error_path) if error_path else None
        self._error_value = error_value
        self._error_message = compile_selector(error_message_path)
        self._transform = transform
        self._resource = resource
        self._redact_url = redact_url

    def _raise(self, message: str, fetched: Fetched) -> None:
        response = fetched.response
        url = fetched.url
        if url is not None and self._redact_url is not None:
            url = self._redact_url(url)
        raise ApiError(
            message,
            method=response.request.method if response is not None else None,
            url=url,
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
            self._raise_reported(fetched)

    def _raise_reported(self, fetched: Fetched) -> None:
        from interlink.http import error_message

        body = fetched.body
        message = self._error_message(body)
        text = message if isinstance(message, str) and message else error_message(body)
        if not text and isinstance(body.get("msg"), str):
            text = body["msg"]
        code = body.get("code")
        if _http_error(code):
            text = f"{text or 'no message'} (code {code})"
        self._raise(f"the API reported an error: {text or 'no message'}", fetched)

    def _check_nothing_came(self, fetched: Fetched) -> None:
        """A page without records whose envelope reports an error (`{"error": {...}}`,
        `{"errors": [...]}`, an HTTP error's number in `code` or `status`: `{"code": 500,
        "msg": ..., "data": null}`) is that error: read as an empty page, it would end the
        read as whole. Beside records, such fields are the API's own business."""
        body = fetched.body
        if self._error is not None or not isinstance(body, dict):
            return
        if (
            _said(body.get("error"))
            or (isinstance(body.get("errors"), list) and bool(body["errors"]))
            or _http_error(body.get("code"))
            or _http_error(body.get("status"))
        ):
            self._raise_reported(fetched)

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
        if (
            value is MISSING
            and self._nulls_are_empty
            and self._path
            and null_on_the_way(body, self._path)
        ):
            # A null on the way is an empty list (zeep's `products: None` for an empty
            # `<products/>`); whether the read is whole, the totals and the paging say.
            value = None
        if value is MISSING or value is None or value == []:
            self._check_nothing_came(fetched)
        if value is MISSING:
            keys = ", ".join(list(body)[:8]) if isinstance(body, dict) else type(body).__name__
            where = f"at {self._path!r}" if self._path else "(set `records:`)"
            self._raise(f"no records {where} in the response; it has: {keys}", fetched)
        if value is None:
            return []
        if isinstance(value, dict):
            if not (self._nulls_are_empty or self._paginator.one_page) and _wraps(value):
                # An object holding a list of objects is a wrapper of records, not one: on
                # a read of pages, taking it for one record loses the rest unseen. (A plain
                # object is one record, as an API converted from XML sends a list of one.)
                self._raise(
                    f"records at {self._path or 'data'!r} are an object holding a list "
                    f"({', '.join(k for k, v in value.items() if _records_list(v))}) where "
                    "a page's list was expected: point `records:` at the list",
                    fetched,
                )
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


_PAST_THE_END = frozenset({400, 404, 416})
"""How APIs refuse a page past the last one (DRF's `Invalid page.` is a 404)."""

_UNCLEAR = 400
"""A refusal that may mean "past the last page" or anything else: checked first."""

_NOT_A_REFUSAL = frozenset({401, 403, 429})
"""Answers to the check that say nothing about the list (credentials, a rate limit): they
go up as they are, as on any other page, and a job retries them."""


async def _confirm_the_end(
    fetch: Fetch,
    paginator: BasePaginator,
    probe: RequestSpec,
    extract: Extractor,
    refusal: ApiError,
    resource: str,
) -> None:
    """After a 400 to the probe: return when `paginator.end_check`'s request finds the list
    ended (or none can be made); otherwise raise PaginationError, never passing a list
    that may go on as whole."""
    check = paginator.end_check(probe)
    if check is None:
        return
    where = f"{resource}: " if resource else ""
    refused = f"the API refused the request that followed a page shorter than asked ({refusal})"
    try:
        found = extract(await fetch(check))
    except ApiError as exc:
        status = exc.status_code
        if status is None or not 400 <= status < 500 or status in _NOT_A_REFUSAL:
            raise  # a transport failure, a 5xx, a 429 ...: as on any page, retried
        raise PaginationError(
            f"{where}{refused}, and refused the request that checks whether the list ended "
            f"there too (HTTP {status}): interlink could not tell whether the list ended, "
            "and stopped rather than pass part of it as the whole"
        ) from exc
    if len(found) > 1:
        raise PaginationError(
            f"{where}{refused}, but the list goes on: {len(found)} records from the last "
            "one read; the refusal was not the end of the list"
        )


def _named(error: PaginationError, resource: str) -> PaginationError:
    """A paginator's error (a cursor sent twice, a bad checkpoint) with the resource it
    happened in, as the reader's own errors say it; the same object when it names it."""
    if not resource or type(error) is not PaginationError:
        return error
    text = str(error)
    if text.startswith(f"{resource}: "):
        return error
    return PaginationError(f"{resource}: {text}")


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
    on_total_mismatch: OnTotalMismatch = "fail",
    resource: str = "",
    follow: Follow | None = None,
    key: str | None = None,
    said_already: set[str] | None = None,
) -> AsyncIterator[Page]:
    """Yield the pages of one read, in order; see the module docstring for the mechanics.

    `resume` is a checkpoint of an earlier page; None or an empty dict read from the start.
    `follow` vets every request's URL before it is sent, wherever the paginator (or a
    checkpoint) took it from: a next link to another origin stops the read there. `key`
    is the records' primary key field: a whole read counts its distinct records by it.
    `said_already` holds the kinds of signpost warning ("clock", "future") a larger read
    this one belongs to has given already (a child resource's reads share one).
    """
    received: int | None = 0
    announced: int | None = None
    if resume and tracker is not None:
        tracker.resume_from(resume)
    if resume:
        # What the tracker keeps is the read's, not the paginator's: a checkpoint of it
        # alone still means "under way, from the beginning".
        resume = {k: v for k, v in resume.items() if k not in READ_FIELDS}
    if resume:
        try:
            paginator.restore(resume, spec)
        except PaginationError as exc:
            raise _named(exc, resource) from None
        # Checkpoints from before records were counted leave the count unknown.
        received = as_int(resume.get("received"))
        announced = as_int(resume.get("announced"))
        # A checkpoint of a short first page: the page it resumes at is the probe.
        paginator.probing = resume.get("probing") is True
    else:
        paginator.init_request(spec)
    if follow is not None:
        spec.url = follow(spec.url)
    watch = ReadWatch(
        paginator,
        resource=resource,
        received=received,
        announced=announced,
        whole=limit is None,
        on_total_mismatch=on_total_mismatch,
        key=key,
    )
    overlap = PageOverlap(key, resume.get(OVERLAP_KEYS) if resume else None)
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

    began = datetime.now(UTC)
    skew: str | None = None
    launch(spec.copy())
    try:
        while in_flight:
            request, task = in_flight.popleft()
            probing = paginator.probing
            try:
                fetched = await task
            except ApiError as exc:
                # A page asked for only to see that the list ended, refused as past the
                # last one: the list ended (a 400 once a check agrees).
                if not probing or exc.status_code not in _PAST_THE_END:
                    raise
                if exc.status_code == _UNCLEAR:
                    await _confirm_the_end(fetch, paginator, request, extract, exc, resource)
                fetched = Fetched(body={})
                records: list[Record] = []
            else:
                if not in_flight and limit is None:
                    # Ask the server for the likely next page before parsing this one.
                    guess = paginator.peek(fetched, spec)
                    if guess is not None:
                        if follow is not None:
                            guess.url = follow(guess.url)
                        launch(guess)
                        await _let_requests_start()
                try:
                    records = extract(fetched)
                except PaginationError as exc:
                    raise _named(exc, resource) from None
            number += 1
            page = records
            # A page asked back: keep what the read has not had; the list moved past
            # it when the page before's last records are gone from it (`_overlap`).
            back = paginator.back
            records, lost = overlap.check(records, back)
            if lost:
                watch.moved(number)
            elif len(page) - len(records) > back:
                watch.came_again(len(page) - len(records) - back)
            warnings = watch.page(number, request, fetched.headers, records)
            try:
                paginator.update_state(fetched, page)
            except PaginationError as exc:
                raise _named(exc, resource) from None
            watch.note_totals()
            if tracker is not None:
                if number == 1:
                    # From when the read began (a resumed or child read brought that), by
                    # the API's clock when it is behind ours: the signpost only ever lowers.
                    said = fetched.headers.get("date")
                    start = tracker.began if tracker.began is not None else began
                    tracker.set_signpost(start + behind_by(began, said))
                    skew = clock_note(began, datetime.now(UTC), said)
                records = tracker.observe(records, number)
            done = not paginator.has_next_page
            if limit is not None and emitted + len(records) >= limit:
                records = records[: limit - emitted]
                done = True
            emitted += len(records)
            complete = True
            if done:
                complete, more = watch.finish(number)
                warnings.extend(more)
                if tracker is not None:
                    for kind, note in (("clock", skew), ("future", tracker.held_back_note())):
                        # One of each a whole read, however many child reads it makes.
                        if note and (said_already is None or kind not in said_already):
                            warnings.append(note)
                            if said_already is not None:
                                said_already.add(kind)
            checkpoint = paginator.state()
            if checkpoint is not None and watch.received is not None:
                checkpoint = {**checkpoint, "received": watch.received}
            if checkpoint is not None and watch.peak is not None:
                checkpoint = {**checkpoint, "announced": watch.peak}
            if checkpoint is not None and paginator.probing:
                checkpoint = {**checkpoint, "probing": True}
            if checkpoint is not None and tracker is not None:
                checkpoint = {**checkpoint, **tracker.checkpoint_fields()}
            kept = overlap.checkpoint() if paginator.back else None
            if checkpoint is not None and kept is not None:
                checkpoint = {**checkpoint, OVERLAP_KEYS: kept}
            if not done:
                paginator.update_request(spec)
                if follow is not None:
                    spec.url = follow(spec.url)
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
                seen_to=tracker.seen_to if tracker is not None else None,
                url=fetched.url,
                done=done,
                complete=complete,
                warnings=warnings,
            )
            if done:
                break
    finally:
        await asyncio.gather(*cancel_all(), return_exceptions=True)
