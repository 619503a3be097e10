"""The record stores and the pagination helpers, without HTTP."""

import time

import pytest
from hypothesis import given, strategies as st

from interlink.sandbox import CustomerStore, ProductStore, make_customer, make_product
from interlink.sandbox._pagination import decode_cursor, encode_cursor, parse_since
from interlink.sandbox._store import bisect_right


def test_changes_are_kept_as_overrides_only() -> None:
    store = CustomerStore(records=10_000_000, seed=42)
    store.touch([5, 9_999_999], "2030-01-01T00:00:00Z")
    store.update(7, {"first_name": "Q"})
    assert len(store._overrides) == 3 and store.total == 10_000_000
    started = time.perf_counter()
    page = store.page(9_999_000, 1000)
    assert time.perf_counter() - started < 0.5
    assert page[998]["updated_at"] == "2030-01-01T00:00:00Z"
    assert page[0] == make_customer(42, 9_999_001)


def test_filtered_index_is_cached_until_the_next_change() -> None:
    store = CustomerStore(records=2000, seed=1)
    since = "2023-06-01T00:00:00Z"
    first = store.ids(since)
    assert store.ids(since) is first
    assert list(first) == [c for c in range(1, 2001) if make_customer(1, c)["updated_at"] >= since]
    store.touch([1])
    assert store.ids(since) is not first and store.ids(since)[0] == 1


def test_updated_at_shortcut_matches_the_records() -> None:
    store = CustomerStore(records=500, seed=3)
    for customer_id in range(1, 501):
        assert (
            store._generated_updated_at(customer_id) == make_customer(3, customer_id)["updated_at"]
        )


def test_after_and_page_skip_deleted_records() -> None:
    store = ProductStore(count=10, seed=2)
    assert store.delete(4) and not store.delete(4) and not store.delete(11)
    assert [p["id"] for p in store.page(0, 100)] == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    records, more = store.after(3, 2)
    assert [p["id"] for p in records] == [5, 6] and more
    records, more = store.after(8, 5)
    assert [p["id"] for p in records] == [9, 10] and not more
    assert store.get(4) is None and store.missing([3, 4]) == [4]
    store.reset()
    assert store.get(4) == make_product(2, 4)


def test_created_ids_are_never_reused() -> None:
    store = CustomerStore(records=2, seed=1)
    first = store.create({"email": "a@example.com"})
    store.delete(first["id"])
    assert store.create({"email": "b@example.com"})["id"] == first["id"] + 1
    assert [c["id"] for c in store.page(0, 10)] == [1, 2, 4]


@given(st.lists(st.integers(0, 1000), unique=True).map(sorted), st.integers(-5, 1005))
def test_bisect_right(ids: list[int], value: int) -> None:
    import bisect

    assert bisect_right(ids, value) == bisect.bisect_right(ids, value)


@given(st.integers(0, 2**53), st.one_of(st.none(), st.datetimes().map(lambda d: d.isoformat())))
def test_cursor_round_trip(last_id: int, since: str | None) -> None:
    normalised = parse_since(since) if since is not None else None
    assert decode_cursor(encode_cursor(last_id, normalised)) == (last_id, normalised)


@given(st.text(max_size=40))
def test_any_garbage_is_no_cursor_or_a_valid_one(garbage: str) -> None:
    try:
        last_id, since = decode_cursor(garbage)
    except ValueError:
        return
    assert last_id >= 0 and (since is None or parse_since(since) == since)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T01:30:00+01:30", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00.000001Z", "2024-01-01T00:00:01Z"),
        ("2024-01-01T00:00:00 00:00", "2024-01-01T00:00:00Z"),
        ("0999-01-01T00:00:00Z", "0999-01-01T00:00:00Z"),
    ],
)
def test_parse_since(raw: str, expected: str) -> None:
    assert parse_since(raw) == expected


@pytest.mark.parametrize("raw", ["", "  ", "now", "2024-02-30", "9999-12-31T23:59:59.5Z"])
def test_parse_since_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_since(raw)
