"""`DistinctKeys` counts exactly what a set would, integer keys in a bitmap: against a
real set, on keys that come in order, backwards, with gaps, negative, repeated, mixed with
strings and spread wider than a bitmap may grow."""

from __future__ import annotations

import random

import pytest

from interlink.connectors._distinct_keys import MAX_SPAN, DistinctKeys


def _pages(keys: list, size: int) -> list[list]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]


CASES = {
    "ascending ids": list(range(1, 10_001)),
    "descending ids": list(range(10_000, 0, -1)),
    "negative and zero": list(range(-500, 500)),
    "repeats": [n // 3 for n in range(3_000)],
    "random with gaps": random.Random(7).sample(range(10**9, 10**9 + 10**6), 5_000),
    "strings": [f"cus_{n:05d}" for n in range(2_000)] * 2,
    "ints, strs": list(range(1_000)) + [str(n) for n in range(500)] + list(range(990, 1_010)),
    "wider than a bitmap": [1, 2, MAX_SPAN + 5, 3, -MAX_SPAN, 2],
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("size", [1, 7, 1_000])
def test_it_counts_what_a_set_counts(case: str, size: int) -> None:
    keys, reference = DistinctKeys(), set()
    for page in _pages(CASES[case], size):
        before = len(reference)
        reference.update(page)
        assert keys.add(page) == len(reference) - before
        assert len(keys) == len(reference)


def test_integer_keys_take_bits_not_a_set() -> None:
    keys = DistinctKeys()
    for page in _pages(list(range(1, 100_001)), 1_000):
        keys.add(page)
    assert len(keys) == 100_000
    assert keys._set is None and len(keys._bits) <= 12_510


@pytest.mark.parametrize("width", [1, 7, 8, 9, 25, 64, 1_000])
def test_pages_of_consecutive_ids_count_what_a_set_counts(width: int) -> None:
    """Windows that overlap the ones before, start on any bit and end on any bit: each
    page is consecutive ids (the whole-byte path), some bits set already."""
    keys, reference = DistinctKeys(), set()
    starts = [0, 3, 5, width // 2, 100, 97, 13, 250, 0, 1_000]
    for start in starts:
        page = list(range(start, start + width))
        before = len(reference)
        reference.update(page)
        assert keys.add(page) == len(reference) - before, (start, width)
        assert len(keys) == len(reference)
    assert keys._set is None
    assert sorted(keys._integers()) == sorted(reference)
