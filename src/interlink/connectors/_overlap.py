"""The records a page asked back, checked against the page before (offset reads).

A read by offset that asks each page from `offset` misses a record whenever one before
the offset is removed between two requests: the later records move back by one, and the
one at the boundary lands on the page already read. The total shows it only when nothing
was created meanwhile. So a page after the first asks `back` records early (the
paginator's `back`, see `_position_paginators.OffsetPaginator`), and `PageOverlap` finds
where the page before ended: a run of this page's first records that is the page
before's last records, in order. It tries the page as asked first (nothing moved), then
records removed before it (the run is shorter: it starts later in the page before),
then records added before it (longer):

- found: the records of the run were read already and are dropped; the rest are the
  ones not read yet, and nothing was missed;
- not found: the list moved by `back` records or more, a record among the last ones read
  changed place, or the API did not start the page at the offset asked; records may
  have slipped past the read unseen. The reader stops the read as incomplete
  (`ReadWatch.moved`); read on (`on_total_mismatch: warn`), the page loses its first
  `back` records, as a read without the overlap would have had it.

Records are compared by their primary key when the page before's last keys are all
there and distinct (an edit does not change a key), else by their whole content (a key
such as an order line's number repeats from order to order). A run, not a key found
anywhere, is what counts: a record read before and moved to the end of the list (edited,
in a list sorted by `updated_at`) does not pass for where the page before ended.
"""

from __future__ import annotations

import hashlib
import operator
from typing import Any

import orjson

from ._page import Record

__all__ = ["KEPT", "MOST_BACK", "OVERLAP_KEYS", "PageOverlap"]

OVERLAP_KEYS = "overlap_keys"
"""The checkpoint's identities of the last records read, for a resumed read to check."""

KEPT = 30
"""A page's last records whose identities are kept."""

MOST_BACK = 20
"""The most records a page asks back: the rest of `KEPT` finds records added before it."""


class PageOverlap:
    """The last records of the page before, and the check of the next page's first ones."""

    def __init__(self, key: str | None, kept: Any = None) -> None:
        self._key = key
        self._keys: list[Any] = []
        self._contents: list[str] = []
        if isinstance(kept, dict) and isinstance(kept.get("ids"), list):
            ids = kept["ids"]
            if kept.get("by") == "key" and all(type(i) in (int, str) for i in ids):
                self._keys = ids
            elif kept.get("by") == "content" and all(type(i) is str for i in ids):
                self._contents = ids

    def checkpoint(self) -> dict[str, Any] | None:
        """The last records' identities, JSON-able (None before any page)."""
        if self._keys:
            return {"by": "key", "ids": self._keys}
        if self._contents:
            return {"by": "content", "ids": self._contents}
        return None

    def check(self, records: list[Record], back: int) -> tuple[list[Record], bool]:
        """The records of a page asked `back` records early that the read has not had,
        and whether the page lost sight of the page before (records may have slipped
        past the read); remembers this page's last records."""
        keys, contents = self._keys, self._contents
        self._remember(records)
        if not back or not records:
            return records, False
        if not keys and not contents:  # nothing to check against (never after a page)
            return records[back:], False
        head = records[: max(len(keys), len(contents)) + back]
        earlier: list[Any] = keys
        found = _keys(head, self._key) if keys else None
        if found is None:  # no keys to go by, here or on the page before: the contents
            earlier, found = contents, _contents(head) if contents else None
        if found is None:
            return records[back:], True
        seen = len(earlier)
        asked = max(seen - back, 0)
        for start in [asked, *range(asked + 1, seen), *range(asked - 1, -1, -1)]:
            run = seen - start
            if found[:run] == earlier[start:]:
                return records[run:], False
        return records[back:], True

    def _remember(self, records: list[Record]) -> None:
        if not records:
            return
        last = records[-KEPT:]
        keys = _keys(last, self._key)
        self._keys = keys if keys is not None and len(set(keys)) == len(keys) else []
        self._contents = [] if self._keys else _contents(last)


def _keys(records: list[Record], key: str | None) -> list[Any] | None:
    """The records' keys; None when one has none (or one that is not text or an integer)."""
    if key is None:
        return None
    try:
        keys = list(map(operator.itemgetter(key), records))
    except (KeyError, TypeError):
        return None
    return keys if all(type(k) in (int, str) for k in keys) else None


def _contents(records: list[Record]) -> list[str]:
    """A digest of each record's whole content."""
    digests: list[str] = []
    for record in records:
        try:
            text = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            text = repr(record).encode()
        digests.append(hashlib.blake2b(text, digest_size=8).hexdigest())
    return digests
