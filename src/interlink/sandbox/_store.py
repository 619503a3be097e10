"""Record stores: generated records computed on demand, plus the changes clients made.

A store never holds its generated records. Record `n` is computed from `(seed, n)` each
time it is read; only records that were created, changed, touched or deleted are kept
(as whole-record overrides and tombstones), so memory grows with the changes, not with
the size of the data set.

Every listing is sorted by id. `ids(since)` is the id index of a listing: without a
filter and with nothing deleted it is arithmetic (a `range`, or the generated index
followed by the created ids); a filtered listing is built in one pass over the records
and cached until the next change, so paging through it costs one pass, not one per page.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar, cast

from ._products import Product, make_product

__all__ = ["BaseRecordStore", "IdIndex", "ProductStore", "bisect_right", "now_timestamp"]

R = TypeVar("R", bound=Mapping[str, Any])

# Listings filtered by different `updated_since` values kept at once.
_CACHED_FILTERS = 16


def now_timestamp() -> str:
    """The current UTC time as `2024-01-31T12:00:00Z`, the format of every `*_at` field."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class IdIndex(Protocol):
    """A sorted, indexable sequence of record ids (a `range`, an `array`, ...)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> int: ...

    def __iter__(self) -> Iterator[int]: ...


class _Concat:
    """Two sorted id indexes, every id of `first` below every id of `second`."""

    def __init__(self, first: IdIndex, second: Sequence[int]) -> None:
        self.first = first
        self.second = second
        self._split = len(first)

    def __len__(self) -> int:
        return self._split + len(self.second)

    def __getitem__(self, index: int, /) -> int:
        if index < self._split:
            return self.first[index]
        return self.second[index - self._split]

    def __iter__(self) -> Iterator[int]:
        yield from self.first
        yield from self.second


def bisect_right(index: IdIndex, value: int) -> int:
    """The position after the last id `<= value` in the sorted `index`."""
    low, high = 0, len(index)
    while low < high:
        middle = (low + high) // 2
        if value < index[middle]:
            high = middle
        else:
            low = middle + 1
    return low


class BaseRecordStore(ABC, Generic[R]):
    """The records of one resource: generated ones plus overrides, creations and deletions.

    Subclass it and override `_generated_ids`, `_is_generated`, `_generate` and, when a
    record's `updated_at` can be computed more cheaply than the record,
    `_generated_updated_at`. Created records get ids above every generated one.
    """

    def __init__(self) -> None:
        self._overrides: dict[int, R] = {}
        self._created: list[int] = []
        self._deleted: set[int] = set()
        self._next_id: int | None = None
        self._version = 0
        self._filtered: dict[str | None, IdIndex] = {}
        self._filtered_version = 0

    # -- what a subclass provides -------------------------------------------------------

    @abstractmethod
    def _generated_ids(self) -> IdIndex: ...

    @abstractmethod
    def _is_generated(self, record_id: int) -> bool: ...

    @abstractmethod
    def _generate(self, record_id: int) -> R: ...

    def _generated_updated_at(self, record_id: int) -> str:
        return str(self._generate(record_id)["updated_at"])

    def _first_free_id(self) -> int:
        generated = self._generated_ids()
        return generated[len(generated) - 1] + 1 if len(generated) else 1

    # -- reading ------------------------------------------------------------------------

    def get(self, record_id: int) -> R | None:
        """Return the record with `record_id`, or None if there is none (or it was deleted)."""
        if record_id in self._deleted:
            return None
        override = self._overrides.get(record_id)
        if override is not None:
            return override
        if self._is_generated(record_id):
            return self._generate(record_id)
        return None

    def _record(self, record_id: int) -> R:
        override = self._overrides.get(record_id)
        return override if override is not None else self._generate(record_id)

    def ids(self, since: str | None = None) -> IdIndex:
        """The sorted ids of the records whose `updated_at >= since` (all when None)."""
        if since is None and not self._deleted:
            generated = self._generated_ids()
            return _Concat(generated, self._created) if self._created else generated
        if self._filtered_version != self._version:
            self._filtered.clear()
            self._filtered_version = self._version
        index = self._filtered.get(since)
        if index is None:
            if len(self._filtered) >= _CACHED_FILTERS:
                self._filtered.clear()
            index = self._filtered[since] = self._build_index(since)
        return index

    def _build_index(self, since: str | None) -> IdIndex:
        found = array("q")
        deleted, overrides = self._deleted, self._overrides
        updated_at = self._generated_updated_at
        for record_id in self._generated_ids():
            if record_id in deleted:
                continue
            override = overrides.get(record_id)
            updated = override["updated_at"] if override is not None else updated_at(record_id)
            if since is None or updated >= since:
                found.append(record_id)
        for record_id in self._created:
            if record_id not in deleted and (
                since is None or overrides[record_id]["updated_at"] >= since
            ):
                found.append(record_id)
        return found

    def count(self, since: str | None = None) -> int:
        return len(self.ids(since))

    @property
    def total(self) -> int:
        """How many records there are now, without a filter."""
        return self.count()

    def page(self, offset: int, limit: int, since: str | None = None) -> list[R]:
        """Return up to `limit` records in id order, skipping the first `offset`."""
        index = self.ids(since)
        end = min(offset + limit, len(index))
        return [self._record(index[position]) for position in range(offset, end)]

    def after(self, last_id: int, limit: int, since: str | None = None) -> tuple[list[R], bool]:
        """Return up to `limit` records with ids above `last_id`, and whether more follow."""
        index = self.ids(since)
        start = bisect_right(index, last_id)
        end = min(start + limit, len(index))
        records = [self._record(index[position]) for position in range(start, end)]
        return records, end < len(index)

    # -- changing -----------------------------------------------------------------------

    @property
    def version(self) -> int:
        """A number that grows with every change (create, update, touch, delete, reset)."""
        return self._version

    def _changed(self) -> None:
        self._version += 1

    def put(self, record: R) -> R:
        """Store `record` as the new version of the existing record with its id."""
        self._overrides[int(record["id"])] = record
        self._changed()
        return record

    def add(self, build: Callable[[int], R]) -> R:
        """Create a record: `build(new_id)` returns it; ids are never reused."""
        if self._next_id is None:
            self._next_id = self._first_free_id()
        record_id = self._next_id
        self._next_id += 1
        record = build(record_id)
        self._overrides[record_id] = record
        self._created.append(record_id)
        self._changed()
        return record

    def delete(self, record_id: int) -> bool:
        """Delete a record; False if there was none."""
        if self.get(record_id) is None:
            return False
        self._deleted.add(record_id)
        self._overrides.pop(record_id, None)
        self._changed()
        return True

    def missing(self, record_ids: Iterable[int]) -> list[int]:
        """The ids in `record_ids` that name no record."""
        return [record_id for record_id in record_ids if self.get(record_id) is None]

    def touch(self, record_ids: Iterable[int], now: str | None = None) -> list[R]:
        """Set `updated_at` of existing records to `now` (the current time by default)."""
        stamp = now or now_timestamp()
        touched: list[R] = []
        for record_id in record_ids:
            record = self.get(record_id)
            if record is not None:
                touched.append(self.put(cast(R, {**record, "updated_at": stamp})))
        return touched

    def reset(self) -> None:
        """Forget every change: back to the generated records only."""
        self._overrides.clear()
        self._created.clear()
        self._deleted.clear()
        self._next_id = None
        self._changed()


class ProductStore(BaseRecordStore[Product]):
    """Products `1..count` of `make_product(seed, n)`; read-only except for `/_touch`."""

    def __init__(self, *, count: int, seed: int) -> None:
        if count < 0:
            raise ValueError("the product count must not be negative")
        super().__init__()
        self.count_generated = count
        self.seed = seed

    def _generated_ids(self) -> IdIndex:
        return range(1, self.count_generated + 1)

    def _is_generated(self, record_id: int) -> bool:
        return 1 <= record_id <= self.count_generated

    def _generate(self, record_id: int) -> Product:
        return make_product(self.seed, record_id)
