"""The contract between a paginator and the reader that drives it (`BasePaginator`), the
paginator of an API that answers in one page, and the helpers every family shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from interlink.errors import PaginationError

from ._page import Fetched, Record, RequestSpec
from ._selectors import MISSING, compile_selector
from ._totals import Total

__all__ = ["MAX_EMPTY_PAGES", "BasePaginator", "BodyTotal", "SinglePagePaginator", "as_int"]


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


MAX_EMPTY_PAGES = 1000
"""Empty pages in a row, each with a new cursor or link, before a read is taken for a loop."""


class BasePaginator(ABC):
    """The contract between a paginator and the reader that drives it.

    Override `update_state` (required) and whichever of `init_request`, `update_request`,
    `state`, `restore` and `plan` your API needs. Keep it free of I/O: everything it needs
    is in the `Fetched` page and the records selected from it.
    """

    has_next_page: bool = True
    one_page: bool = False
    """The whole result comes in one response (`single`): an object where a list was
    expected is one record. On a read of pages it is a page the read cannot count."""

    def init_request(self, spec: RequestSpec) -> None:
        """Shape the first request (page size, first page number...)."""
        return None

    @abstractmethod
    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        """Learn from a page; set `has_next_page`."""

    def update_request(self, spec: RequestSpec) -> None:
        """Shape the request for the next page."""
        return None

    def state(self) -> dict[str, Any] | None:
        """Where the next page starts, as a JSON-able checkpoint; None when done."""
        return None

    def restore(self, state: dict[str, Any], spec: RequestSpec) -> None:
        """Continue from a checkpoint `state()` returned: shape `spec` for that page."""
        raise PaginationError(f"{type(self).__name__} cannot resume from a checkpoint")

    def plan(self) -> list[dict[str, Any]] | None:
        """The params of every remaining page, when they are known without reading on."""
        return None

    def peek(self, fetched: Fetched, spec: RequestSpec) -> RequestSpec | None:
        """A guess at the next request from headers or raw bytes, before the body is parsed.

        The reader sends the guess at once, so the server works on the next page while this
        one is parsed; if `update_request` then disagrees, the guess is cancelled. Return
        None (the default) when you cannot tell cheaply.
        """
        return None

    def end_check(self, probe: RequestSpec) -> RequestSpec | None:
        """The request that tells what a 400 to the probe (`probing`) meant.

        Its window starts at the last record read: if the list ended where the probe
        asked, its answer holds that one record (or none); more means the list goes on.
        None (the default) when no such request can be made; the 400 then ends the list.
        """
        return None

    def default_records(self, body: Any) -> Any:
        """Where the records are when the resource does not say (MISSING: no opinion)."""
        return MISSING

    def asked(self) -> tuple[str, int] | None:
        """The page-size parameter and the size sent (`("limit", 100)`), if one is sent.

        A page larger than that makes the reader warn that the API may ignore it.
        """
        return None

    back: int = 0
    """Records the next request asks back, before the first record not read yet: the
    reader checks them against the last records of the page before (`_overlap`) and
    drops those read already."""

    counts_positions: bool = False
    """True when pages are found by position (an offset, a page number): records removed
    during the read shift the later ones (see `_totals`)."""

    probing: bool = False
    """True while the next request only checks that the list really ended (a short first
    page without a total: the end, or a server that caps the page size without saying
    so). The reader takes a 404 or 416 to it as the end of the list, as APIs that refuse
    a page past the last answer (`Invalid page.`); a 400, which may refuse it for another
    reason, only once `end_check`'s request finds the list ended."""

    def position_param(self) -> str | None:
        """The parameter that moves the read on from page to page (`offset`, `page`,
        `cursor`), named when the API ignores it; None when a next link does it."""
        return None

    def totals(self) -> list[Total]:
        """What the API announced for the whole read, as of the latest page, beside how far
        the read got (`Total(expected=250, got=200, source="the `total` field")`).

        The reader fails a whole read that ends with any of them short. Return what the
        pages said; [] (the default) when they say nothing.
        """
        return []

    def records_reached(self, received: int | None) -> int | None:
        """How far into the API's whole list the read got, in records, for `X-Total-Count`.

        `received` counts the records of this read (None when unknown after a resume);
        override when the read may start past the first record (an offset `start`).
        """
        return received

    def short_read_hint(self) -> str | None:
        """A suggestion to add to the message of a read that ended short."""
        return None


class BodyTotal:
    """The count of records at `total_path` in the body (DRF's `count`), for paginators that
    do not need it to page."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.value: int | None = None
        self._select = compile_selector(path) if path else None

    def update(self, fetched: Fetched) -> None:
        if self._select is not None:
            value = as_int(self._select(fetched.body))
            if value is not None:
                self.value = value

    def totals(self) -> list[Total]:
        if self.value is None:
            return []
        return [Total(self.value, None, f"the `{self.path}` field")]


class SinglePagePaginator(BasePaginator):
    """The whole result comes in one response; with `total_path`, the body's count of the
    whole list is compared with the records that came (a list that outgrew one page)."""

    one_page = True

    def __init__(self, total_path: str | None = None) -> None:
        self._body_total = BodyTotal(total_path)

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        self._body_total.update(fetched)
        self.has_next_page = False

    def totals(self) -> list[Total]:
        return self._body_total.totals()
