"""The distinct primary keys of one read, counted exactly in little memory (`ReadWatch`
counts them to tell a whole read from one where records came twice and others never).

Integer keys, the usual case, are bits of a bitmap over their span: 100,000 ids from 1
take 12.5 kB where a set of them took about 8 MB (its table and the int objects it kept
alive after their records were written). A page whose ids are consecutive (ids read in
order) sets its bytes whole, counting the bits already set in one C-level pass. Keys that
are not integers, or integers spread over more than `MAX_SPAN`, go into a set; the
bitmap's keys move there when that happens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

__all__ = ["MAX_SPAN", "DistinctKeys"]

MAX_SPAN = 1 << 26
"""Integers a bitmap covers at most (64 Mi bits, 8 MiB); keys spread wider go in a set."""


class DistinctKeys:
    """A set of int and str keys that only adds and counts."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self._base = 0  # the integer of bit 0, a multiple of 8
        self._count = 0
        self._set: set[int | str] | None = None

    def __len__(self) -> int:
        return self._count if self._set is None else len(self._set)

    def add(self, keys: Sequence[int | str]) -> int:
        """Add `keys` (ints and strs, not bools); returns how many were not there before."""
        if not keys:
            return 0
        if self._set is None and set(map(type, keys)) == {int}:
            low, high = int(min(keys)), int(max(keys))
            if self._cover(low, high):
                if high - low + 1 == len(keys) and len(set(keys)) == len(keys):
                    return self._add_range(low, high)  # a page of consecutive ids
                return self._add_bits(keys)  # type: ignore[arg-type]
        if self._set is None:
            self._set = set(self._integers())
            self._bits = bytearray()
        before = len(self._set)
        self._set.update(keys)
        return len(self._set) - before

    def _cover(self, low: int, high: int) -> bool:
        """Grow the bitmap to hold low..high; False when the span would pass MAX_SPAN."""
        if not self._bits:
            base = low - low % 8
            if high - base >= MAX_SPAN:
                return False
            self._base = base
            self._bits = bytearray((high - base) // 8 + 1)
            return True
        base = min(self._base, low - low % 8)
        end = max(self._base + len(self._bits) * 8, high + 1)
        if end - base > MAX_SPAN:
            return False
        if base < self._base:
            self._bits[0:0] = bytes((self._base - base) // 8)
            self._base = base
        missing = (end - base + 7) // 8 - len(self._bits)
        if missing > 0:
            self._bits.extend(bytes(missing))
        return True

    def _add_bits(self, keys: Sequence[int]) -> int:
        bits, base, new = self._bits, self._base, 0
        for key in keys:
            at = key - base
            mask = 1 << (at & 7)
            if not bits[at >> 3] & mask:
                bits[at >> 3] |= mask
                new += 1
        self._count += new
        return new

    def _add_range(self, low: int, high: int) -> int:
        """Add every integer of low..high: whole bytes at once, the bits of the bytes at
        either end one by one."""
        bits, new = self._bits, 0
        start, end = low - self._base, high - self._base + 1  # bit positions [start, end)
        while start < end and start & 7:
            new += self._set_bit(start)
            start += 1
        first, last = start >> 3, end >> 3
        if first < last:
            whole = bits[first:last]
            new += (last - first) * 8 - int.from_bytes(whole, "little").bit_count()
            bits[first:last] = b"\xff" * (last - first)
            start = last * 8
        while start < end:
            new += self._set_bit(start)
            start += 1
        self._count += new
        return new

    def _set_bit(self, at: int) -> int:
        """Set bit `at`; 1 when it was not set before."""
        mask = 1 << (at & 7)
        if self._bits[at >> 3] & mask:
            return 0
        self._bits[at >> 3] |= mask
        return 1

    def _integers(self) -> Iterator[int]:
        """The keys the bitmap holds."""
        base = self._base
        for index, byte in enumerate(self._bits):
            if byte:
                for bit in range(8):
                    if byte >> bit & 1:
                        yield base + index * 8 + bit
