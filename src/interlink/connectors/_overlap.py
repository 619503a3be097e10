"""The records a page asked back, checked against the page before (offset reads).

A read by offset that asks each page from `offset` misses a record whenever one before
the offset is removed between two requests: the later records move back by one, and the
one at the boundary lands on the page already read. The total shows it only when nothing
was created meanwhile. So a page after the first asks `back` records early (the
paginator's `back`, see `_position_paginators.OffsetPaginator`), and `PageOverlap` finds
where the page before ended among them: by unique keys, the last of the page before's
records on this page; by content, a run of this page's first records that is the page
before's last records in order (as asked first, then records removed before it, then
records added):

- found: the records read already are dropped (a record added meanwhile, not read yet,
  is kept); the rest are the ones not read yet, and nothing was missed;
- not found: the list moved by `back` records or more (or the records asked back
  changed meanwhile), and records may have slipped past the read unseen. The reader stops
  the read as incomplete (`ReadWatch.moved`), as it does for a total that fell.

Records are told apart by their primary key when the keys at hand are unique, else by
their whole content (a key such as an order line's number repeats from order to order,
and an alignment by it could drop a record never read).
"""

from __future__ import annotations

import hashlib
import operator
from typing import Any

import orjson

from ._page import Record

__all__ = ["OVERLAP_KEYS", "PageOverlap"]

OVERLAP_KEYS = "overlap_keys"
"""The checkpoint's identities of the last records read, for a resumed read to check."""

KEPT = 30
"""Identities of a page's last records kept: the records asked back (at most 10), and as
many again before them for records added meanwhile."""


class PageOverlap:
    """The last records of the page before, and the check of the next page's first ones."""

    def __init__(self, key: str | None, kept: Any = None) -> None:
        self._key = key
        self._by = "key"
        self.ids: list[Any] = []
        """The last records' identities of the latest page (JSON-able, for checkpoints)."""
        if isinstance(kept, dict) and kept.get("by") in ("key", "content"):
            ids = kept.get("ids")
            if isinstance(ids, list) and all(type(i) in (int, str) for i in ids):
                self._by, self.ids = kept["by"], ids

    def checkpoint(self) -> dict[str, Any] | None:
        return {"by": self._by, "ids": self.ids} if self.ids else None

    def check(self, records: list[Record], back: int) -> tuple[list[Record], bool]:
        """The records of a page asked `back` records early that the read has not had,
        and whether the page lost sight of the page before (records may have slipped
        past the read); remembers this page's last records."""
        earlier, by = self.ids, self._by
        self._remember(records)
        if not back or not records:
            return records, False
        if not earlier:  # nothing to check against: drop the records asked back
            return records[back:], False
        head = _identities(records[: len(earlier) + back], self._key, by)
        if head is None:
            return records[back:], False
        if by == "key":
            # Unique keys: the last record of the page before found on this page is where
            # it ended; before it, a record with a key not read yet was added meanwhile.
            known = set(earlier)
            last = max((at for at, value in enumerate(head) if value in known), default=-1)
            if last < 0:
                return records, True
            fresh = [
                r for r, value in zip(records[:last], head, strict=False) if value not in known
            ]
            return fresh + records[last + 1 :], False
        seen = len(earlier)
        # By content: where in the page before this page begins, as a run of records in
        # order; as asked first, then later (records removed before it), then earlier
        # (records added).
        asked = seen - back
        for start in [asked, *range(asked + 1, seen), *range(asked - 1, -1, -1)]:
            run = seen - start
            if head[:run] == earlier[start:]:
                return records[run:], False
        return records, True

    def _remember(self, records: list[Record]) -> None:
        if not records:
            return
        last = records[-KEPT:]
        ids = _identities(last, self._key, "key")
        if ids is not None and len(set(ids)) == len(ids):
            self._by, self.ids = "key", ids
        else:
            self._by = "content"
            self.ids = _identities(last, None, "content") or []


def _identities(records: list[Record], key: str | None, by: str) -> list[Any] | None:
    """Each record's identity: its key (None when one has none, or it is not text or an
    integer), or a digest of its content."""
    if by == "key":
        if key is None:
            return None
        try:
            keys = list(map(operator.itemgetter(key), records))
        except (KeyError, TypeError):
            return None
        return keys if all(type(k) in (int, str) for k in keys) else None
    digests: list[Any] = []
    for record in records:
        try:
            text = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            text = repr(record).encode()
        digests.append(hashlib.blake2b(text, digest_size=8).hexdigest())
    return digests
