"""Is the read whole? What the API announced, what arrived, and pages that come back twice.

The reader runs these checks once per page, never per record:

- a page larger than the page size asked for is a warning (the API may ignore the size
  parameter; the read goes on, since every record still arrives);
- a page whose records are the previous page's again (same length, same first and last
  record) means the API ignored the parameter that moves the read on: PaginationError,
  instead of reading the same records forever;
- at the end of a whole read (no `limit`), every count the API announced (a total field,
  `X-Total-Count`, the total pages, the `last` link) is compared with what arrived, using
  the latest announcement (a total that grows during the read is taken at its last
  value). Short: IncompleteReadError, or with `on_total_mismatch: warn` a warning and a
  last page marked incomplete;
- for reads by position (an offset or page-number paginator, or next links that carry an
  `offset`, `page`, `start`... that moves from page to page: DRF's, GitHub's), a total
  that FELL during the read (since its checkpoint, too) makes the read incomplete the
  same way: records removed meanwhile move the ones after them onto pages already read,
  so some were never seen although the counts agree;
- on a whole read from the start, the records' primary keys are counted too: a record
  that comes again on a later page (records inserted meanwhile push others onto the next
  page; an API that pages wrongly) makes the distinct records fewer than the records
  that arrived. Compared with an announced total, that is a short read although the
  counts agree; without one, a warning. (Up to MAX_KEYS keys are held, integers as bits
  of a bitmap: `_distinct_keys`.)
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import orjson

from interlink.errors import IncompleteReadError, PaginationError

from ._distinct_keys import DistinctKeys
from ._page import Record, RequestSpec

if TYPE_CHECKING:
    from ._paginator_base import BasePaginator

__all__ = ["ReadWatch", "Total", "header_total"]

logger = logging.getLogger("interlink.connectors")

OnTotalMismatch = Literal["fail", "warn"]

MAX_KEYS = 1_000_000
"""Primary keys one read holds to count its distinct records (integer keys as bits of a
bitmap, at most 8 MiB; others in a set, about 120 MB of UUID strings at most);
past it the read stops counting them and relies on the totals alone."""


@dataclass(frozen=True, slots=True)
class Total:
    """A count the API announced for the whole read, beside how far the read got.

    `unit` is "records" (a total field, `X-Total-Count`), "pages" (a total-pages field) or
    "page" (the page number of the `last` link, compared with the page the read ended on).
    `got` None: the records that arrived, as the reader counted them.
    """

    expected: int
    got: int | None
    source: str
    unit: Literal["records", "pages", "page"] = "records"

    @property
    def short(self) -> bool:
        return self.got is not None and self.got < self.expected

    def describe(self) -> str:
        if self.unit == "records":
            return f"{self.got:,} records arrived but {self.source} says {self.expected:,}"
        if self.unit == "pages":
            return f"{self.got:,} pages were read but {self.source} says {self.expected:,}"
        return f"the read ended at page {self.got} but {self.source} names page {self.expected}"


def header_total(headers: Mapping[str, str]) -> int | None:
    """`X-Total-Count: 5000` (json-server, many REST frameworks) as an int, if present."""
    raw = headers.get("x-total-count")
    if raw is None:
        return None
    raw = raw.strip()
    return int(raw) if raw.isascii() and raw.isdigit() else None


_POSITION_PARAMS = frozenset(
    {
        "offset",
        "page",
        "start",
        "skip",
        "startat",
        "_page",
        "_start",
        "page[number]",
        "page[offset]",
        "pagenumber",
        "page_number",
        "startindex",
        "start_index",
    }
)
"""Query parameters that find a page by its position in the list (next links of DRF's
LimitOffset and PageNumber paginations, GitHub's and json-server's `Link` headers,
JSON:API's `page[offset]`, Jira's `startAt`), as opposed to a cursor, the key of the last
record or a time window (`from` is left out: a window's start moves from page to page)."""


def _positions(request: RequestSpec) -> dict[str, str]:
    """The position parameters a request carries with a whole number, from its URL's query
    and its params (a next link carries them in the URL)."""
    found: dict[str, str] = {}
    pairs = [*parse_qsl(urlsplit(request.url).query), *request.params.items()]
    for name, value in pairs:
        if isinstance(value, bool) or name.lower() not in _POSITION_PARAMS:
            continue
        text = str(value).strip()
        if text.isascii() and text.isdigit():
            found[name.lower()] = text
    return found


def _digest(record: Any) -> bytes:
    try:
        return orjson.dumps(record)
    except TypeError:
        return repr(record).encode()


def _fingerprint(records: list[Record]) -> tuple[int, bytes, bytes]:
    return len(records), _digest(records[0]), _digest(records[-1])


class ReadWatch:
    """The per-page checks of one read; see the module docstring.

    `received` is how many records arrived before this read's first page (from a resume
    checkpoint; None when unknown, which skips the counts that need it).
    """

    def __init__(
        self,
        paginator: BasePaginator,
        *,
        resource: str = "",
        received: int | None = 0,
        announced: int | None = None,
        whole: bool = True,
        on_total_mismatch: OnTotalMismatch = "fail",
        key: str | None = None,
    ) -> None:
        self.paginator = paginator
        self.received = received
        self._prefix = f"{resource}: " if resource else ""
        self._whole = whole
        self._on_mismatch = on_total_mismatch
        self._asked: tuple[str, int] | None = paginator.asked()
        self._warned_size = False
        self._previous: tuple[int, bytes, bytes] | None = None
        self._header_total: int | None = None
        self._by_position = paginator.counts_positions
        """True once the read is seen to move by position (see `_positions`)."""
        self._positions: dict[str, str] | None = None
        self.peak = announced
        """The highest record total announced during this read (kept in checkpoints)."""
        self._latest: int | None = None
        # Distinct primary keys, on a whole read from its start only (a resumed read has
        # not seen the keys before its checkpoint).
        self._key = key
        self._keys = DistinctKeys() if key and whole and received == 0 else None
        self._recent: tuple[list[Any], list[Record]] = ([], [])
        """The previous page's keys and records, to tell a repeat from a key that is not
        unique (looked at only when a key comes again: no per-record work otherwise)."""
        self.repeated = 0
        """Records whose primary key arrived earlier in this read."""
        self._moved: str | None = None

    def _count_keys(self, records: list[Record]) -> None:
        """Add one page's keys; a key that cannot tell records apart turns the count off.

        A key that is not a string or an integer (null, true, a float: a set holds 1, 1.0
        and true as one), and keys that came again mostly on different records of one page
        (the key is not unique, e.g. order lines numbered per order, which the pipeline
        keys with another field), make the count stand aside; a record pushed onto the next
        page arrives again (edited meanwhile, perhaps: a list sorted by `updated_at` moves
        it), and a page served again arrives mostly the same.
        """
        keys = self._keys
        assert keys is not None and self._key is not None
        try:
            values = list(map(operator.itemgetter(self._key), records))
        except (KeyError, TypeError):  # a record without its key, or not an object
            self._keys = None
            return
        if not set(map(type, values)) <= {int, str}:
            self._keys = None
            return
        came_again = len(values) - keys.add(values)
        if came_again:
            recent = dict(zip(*self._recent, strict=True))
            seen: dict[Any, Record] = {}
            same = other = 0
            example: Any = None
            for value, record in zip(values, records, strict=True):
                if value in seen:
                    # One page is one answer: two records under one key on it are two
                    # records, not one edited.
                    if seen[value] == record:
                        same += 1
                    else:
                        other += 1
                        example = value
                elif value in recent:
                    # On the page before, on other content or not: the same record, edited
                    # meanwhile perhaps (a list sorted by `updated_at` moves an edited
                    # record onto a later page, and another record off the read).
                    same += 1
                seen[value] = record
            # Mostly the same records again is a page served again (an API that ignored
            # its paging parameter while a record or two changed meanwhile), or records
            # that moved between pages: the count goes on, and finds the records that
            # never came. Mostly other records under one key on one page is a key that is
            # not unique.
            if other > same:
                logger.debug(
                    "%s`%s` %r is on two different records: distinct records not counted",
                    self._prefix,
                    self._key,
                    example,
                )
                self._keys = None
                return
        self._recent = (values, records)
        self.repeated += came_again
        if len(keys) > MAX_KEYS:
            logger.debug(
                "%sover %d keys: distinct records no longer counted", self._prefix, MAX_KEYS
            )
            self._keys = None
            self._recent = ([], [])

    def _warn(self, message: str) -> str:
        text = self._prefix + message
        logger.warning("%s", text)
        return text

    def page(
        self, number: int, request: RequestSpec, headers: Mapping[str, str], records: list[Record]
    ) -> list[str]:
        """Check one page as it arrived (before any client-side filter); its warnings."""
        warnings: list[str] = []
        count = len(records)
        if self.received is not None:
            self.received += count
        if not self._by_position:
            positions = _positions(request)
            earlier = self._positions
            if earlier is not None and any(earlier.get(n) != v for n, v in positions.items()):
                self._by_position = True
            self._positions = positions
        announced = header_total(headers)
        if announced is not None:
            self._header_total = announced
        asked = self._asked
        if asked is not None and count > asked[1] and not self._warned_size:
            self._warned_size = True
            param, size = asked
            warnings.append(
                self._warn(
                    f"page {number} has {count:,} records, more than the {size:,} asked for "
                    f"(`{param}={size}`): the API may ignore `{param}`"
                )
            )
        if count and self._keys is not None:
            self._count_keys(records)
        if count:
            fingerprint = _fingerprint(records)
            if fingerprint == self._previous:
                raise PaginationError(self._prefix + self._repeat(number, request))
            self._previous = fingerprint
        else:
            self._previous = None
        return warnings

    def came_again(self, count: int) -> None:
        """`count` records read already came again on a page asked back (records added
        before the offset pushed them on): dropped there, still counted as arriving twice
        so that a whole read compares its distinct records with the total."""
        self.repeated += count

    def moved(self, number: int) -> None:
        """Page `number`, asked back for the last records of the page before, had none
        of them (`_overlap`): records may have slipped past the read. A whole read stops
        as incomplete (with `on_total_mismatch: warn`, goes on and ends incomplete)."""
        if not self._whole or self._moved is not None:
            return
        before = f"page {number - 1}" if number > 1 else "the read before its resume"
        message = (
            f"incomplete read: page {number} no longer began with the records {before} "
            "ended with: records removed from before it during the read moved others onto "
            "pages already read (or one read already moved on), so some may never have "
            "arrived; run again"
        )
        if self._on_mismatch == "warn":
            self._moved = message
            return
        raise IncompleteReadError(
            self._prefix
            + message
            + " (set `on_total_mismatch: warn` on the resource to accept a short read; if "
            "the API's order is not stable, or it does not start a page at the offset "
            "asked, `overlap: 0` on its paginate)"
        )

    def _repeat(self, number: int, request: RequestSpec) -> str:
        param = self.paginator.position_param()
        if param is None:
            return (
                f"page {number} returned the same records as page {number - 1} although the "
                "API's next link moved on; stopping instead of reading them again"
            )
        value = request.params.get(param)
        if number == 2:
            return (
                f"the API ignored `{param}`: page 2 ({param}={value}) returned the same "
                "records as page 1; stopping instead of reading them again"
            )
        # Earlier pages differed: the API followed `param`, then served a page twice
        # (some answer the last page again for a page past the end).
        return (
            f"page {number} ({param}={value}) returned the same records as page "
            f"{number - 1}; stopping instead of reading them again (if the API answers the "
            "last page again past the end, give the paginator a total so the read knows "
            "where it ends)"
        )

    def note_totals(self) -> None:
        """After a page: remember the record totals it announced (the peak and the latest)."""
        for total in self.totals():
            if total.unit == "records":
                self._latest = total.expected
                self.peak = max(self.peak or 0, total.expected)

    def _fell(self) -> str | None:
        if not self._by_position or self.peak is None or self._latest is None:
            return None
        if self._latest >= self.peak:
            return None
        return (
            f"the API's total fell from {self.peak:,} to {self._latest:,} during the read: "
            "records removed meanwhile moved others onto pages already read, so some may "
            "never have arrived; run again"
        )

    def totals(self) -> list[Total]:
        found: list[Total] = list(self.paginator.totals())
        if self._header_total is not None:
            found.append(Total(self._header_total, None, "the X-Total-Count header"))
        reached = self.paginator.records_reached(self.received)
        return [
            total if total.got is not None else replace(total, got=reached)
            for total in found
            if total.got is not None or reached is not None
        ]

    def _repeats(self, totals: list[Total]) -> tuple[str, int, int] | None:
        """A read whose counts agree but whose distinct records fall short of a total."""
        if self._keys is None or not self.repeated:
            return None
        distinct = len(self._keys)
        again = f"{self.repeated:,} came again on later pages"
        for total in totals:
            if total.unit == "records" and distinct < total.expected:
                return (
                    f"incomplete read: {total.got:,} records arrived but only {distinct:,} "
                    f"distinct `{self._key}`s ({again}) "
                    f"while {total.source} says {total.expected:,}: records moved between "
                    "pages during the read, or the API pages wrongly; run again (if "
                    f"`{self._key}` is not unique in this API, set the resource's primary_key "
                    "to a field that is, or on_total_mismatch: warn)",
                    total.expected,
                    distinct,
                )
        return None

    def finish(self, number: int) -> tuple[bool, list[str]]:
        """At the last page: whether the read is whole, and the warnings if it is not.

        Raises IncompleteReadError for a short read unless `on_total_mismatch` is "warn".
        """
        if not self._whole:
            return True, []
        if self._moved is not None:
            return False, [self._warn(self._moved + "; the read is marked incomplete")]
        totals = self.totals()
        short = [total for total in totals if total.short]
        fell = self._fell()
        repeats = self._repeats(totals) if not short and fell is None else None
        if repeats is not None:
            text, announced, distinct = repeats
            if self._on_mismatch == "warn":
                return False, [self._warn(text + "; the read is marked incomplete")]
            raise IncompleteReadError(
                self._prefix
                + text
                + " (set `on_total_mismatch: warn` on the resource to accept a short read)",
                expected=announced,
                got=distinct,
            )
        if not short and fell is None:
            if self.repeated and self._keys is not None:
                return True, [
                    self._warn(
                        f"{self.repeated:,} records came again on later pages (the same "
                        f"`{self._key}`): records may have moved between pages during the "
                        "read; the API announced no total to check the read against"
                    )
                ]
            return True, []
        if short:
            first = short[0]
            hint = self.paginator.short_read_hint()
            message = (
                f"incomplete read: {first.describe()}; the API offered no page after page "
                f"{number}" + (f" ({hint})" if hint else "")
            )
            expected: int | None = first.expected
            got = first.got
        else:
            message = f"incomplete read: {fell}"
            expected, got = self.peak, self._latest
        if self._on_mismatch == "warn":
            return False, [self._warn(message + "; the read is marked incomplete")]
        raise IncompleteReadError(
            self._prefix
            + message
            + " (set `on_total_mismatch: warn` on the resource to accept a short read)",
            expected=expected,
            got=got,
        )
