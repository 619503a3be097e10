"""Incremental cursors compared typed (issue 10): instants as instants, numbers as numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from interlink.connectors import CursorTracker, cursor_key, higher_cursor
from interlink.errors import IncrementalError

# -- generated timestamps ------------------------------------------------------------------

NS = 10**9
EARLIEST = 0  # 1970-01-01
LATEST = 4_102_444_800 * NS  # 2100-01-01


@st.composite
def stamps(draw: st.DrawFn) -> tuple[str, int]:
    """An ISO-8601 text and its true instant in nanoseconds since the epoch (UTC).

    The text varies in precision (0 to 9 fraction digits), in offset (Z, +00:00 or any
    offset to the minute within ±14 h, the wall time shifted to match) and separator.
    """
    digits = draw(st.integers(0, 9))
    step = 10 ** (9 - digits)
    instant = draw(st.integers(EARLIEST // step, LATEST // step)) * step
    minutes = draw(st.one_of(st.just(0), st.integers(-14 * 60, 14 * 60)))
    wall = datetime.fromtimestamp(instant // NS, tz=timezone(timedelta(minutes=minutes)))
    text = wall.strftime("%Y-%m-%d") + draw(st.sampled_from("T ")) + wall.strftime("%H:%M:%S")
    if digits:
        text += "." + f"{instant % NS:09d}"[:digits]
    if minutes == 0 and draw(st.booleans()):
        text += "Z"
    else:
        sign = "+" if minutes >= 0 else "-"
        text += f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return text, instant


def records_of(texts: list[Any], field: str = "at") -> list[dict[str, Any]]:
    return [{"id": i, field: text} for i, text in enumerate(texts)]


@settings(max_examples=300, deadline=None)
@given(st.lists(stamps(), min_size=1, max_size=30))
def test_the_highest_stamp_is_the_latest_instant_written_as_the_api_wrote_it(found):
    instant_of = dict(found)
    tracker = CursorTracker("at")
    half = len(found) // 2
    tracker.observe(records_of([text for text, _ in found[:half]]))
    tracker.observe(records_of([text for text, _ in found[half:]]))
    assert tracker.value in instant_of, "the original text, not a normalised one"
    assert instant_of[tracker.value] == max(instant for _, instant in found)


@settings(max_examples=200, deadline=None)
@given(st.lists(stamps(), min_size=1, max_size=30), stamps())
def test_keep_from_keeps_exactly_the_records_at_or_after_the_cursor(found, since):
    tracker = CursorTracker("at", since[0], keep_from=since[0])
    kept = tracker.observe(records_of([text for text, _ in found]))
    assert [r["id"] for r in kept] == [i for i, (_, t) in enumerate(found) if t >= since[1]]
    highest = max([since, *found], key=lambda pair: pair[1])[1]
    assert dict([since, *found])[tracker.value] == highest


numbers = st.one_of(
    st.integers(-(10**12), 10**12),
    st.integers(0, 10**12).map(str),
    st.decimals(-(10**6), 10**6, allow_nan=False, allow_infinity=False, places=4).map(str),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=30))
def test_numbers_and_numeric_strings_compare_as_numbers(values):
    tracker = CursorTracker("v")
    tracker.observe([{"id": i, "v": v} for i, v in enumerate(values)])
    assert Decimal(str(tracker.value)) == max(Decimal(str(v)) for v in values)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.datetimes(datetime(1970, 1, 1), datetime(2100, 1, 1)), min_size=1))
def test_times_without_offset_compare_among_themselves(moments):
    texts = [moment.isoformat() for moment in moments]
    tracker = CursorTracker("at")
    tracker.observe(records_of(texts))
    assert datetime.fromisoformat(tracker.value) == max(moments)


# -- the cases text order got wrong ----------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("2026-01-05T10:00:00Z", "2026-01-05T10:00:00.250Z"),
        ("2026-01-05T11:30:00+02:00", "2026-01-05T10:00:00Z"),
        ("2026-01-05T10:00:00.1234567Z", "2026-01-05T10:00:00.1234568Z"),
        ("2026-01-05T10:00:00.123456Z", "2026-01-05T10:00:00.1234561Z"),
        ("999", "1000"),
        ("999", 1000),
        ("-5", "2.5"),
        ("2026-01-05", "2026-01-05T00:00:01Z"),
        ("2026-01-04T23:59:59", "2026-01-05"),
        ("Mon, 05 Jan 2026 09:00:00 GMT", "2026-01-05T10:00:00Z"),
        (date(2026, 1, 4), "2026-01-05"),
        (datetime(2026, 1, 5, tzinfo=UTC), "2026-01-05T00:00:00.000001Z"),
    ],
)
def test_typed_order(lower, higher):
    assert cursor_key(lower) < cursor_key(higher)
    assert higher_cursor(lower, higher) == higher
    assert higher_cursor(higher, lower) == higher
    tracker = CursorTracker("at")
    tracker.observe([{"id": 1, "at": higher}, {"id": 2, "at": lower}])
    assert tracker.value == higher


def test_equal_instants_keep_the_first_text():
    tracker = CursorTracker("at", "2026-01-05T12:00:00+02:00")
    tracker.observe(records_of(["2026-01-05T10:00:00Z", "2026-01-05T10:00:00.000Z"]))
    assert tracker.value == "2026-01-05T12:00:00+02:00"


def test_a_null_value_is_kept_and_moves_nothing():
    tracker = CursorTracker("at", "2026-01-01T00:00:00Z", keep_from="2026-01-01T00:00:00Z")
    kept = tracker.observe([{"id": 1, "at": None}, {"id": 2, "at": "2025-12-31T00:00:00Z"}])
    assert kept == [{"id": 1, "at": None}] and tracker.value == "2026-01-01T00:00:00Z"


# -- what cannot be compared is an error, never a dropped record ----------------------------


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (["2026-01-05T10:00:00", "2026-01-05T10:00:00Z"], "without offset.*with a UTC offset"),
        (["2026-01-05T10:00:00Z", 17], r"a time with a UTC offset\) with 17 of record id=1"),
        (["yesterday"], "'yesterday', which is neither an ISO-8601 time nor a number"),
        ([True], "record id=0 on page 3 has True"),
        ([float("nan")], "nan"),
        (["2026-01-05", 3], "a date.*a number"),
    ],
)
def test_values_that_cannot_be_compared(values, match):
    tracker = CursorTracker("at")
    with pytest.raises(IncrementalError, match=match):
        tracker.observe(records_of(values), 3)


def test_a_stored_cursor_of_another_kind_is_an_error():
    tracker = CursorTracker("at", "2026-01-05T10:00:00", keep_from="2026-01-05T10:00:00")
    with pytest.raises(IncrementalError, match="the cursor '2026-01-05T10:00:00'"):
        tracker.observe(records_of(["2026-01-05T10:00:00Z"]))
    with pytest.raises(IncrementalError, match="cursor to start from is 'soon'"):
        CursorTracker("at", "soon")


def test_a_field_absent_from_a_record_names_the_field_and_the_record():
    tracker = CursorTracker("updatedAt", primary_key="sku")
    records = [{"sku": "A-1", "updated_at": "2026-01-05T10:00:00Z", "name": "x"}]
    with pytest.raises(IncrementalError) as caught:
        tracker.observe(records, 4)
    message = str(caught.value)
    assert "'updatedAt' is not in record sku='A-1' on page 4" in message
    assert "(it has: sku, updated_at, name)" in message
    assert "check `incremental.field`" in message


def test_a_nested_field_under_a_null_parent_is_null_not_absent():
    tracker = CursorTracker("meta.updated")
    kept = tracker.observe([{"id": 1, "meta": None}, {"id": 2, "meta": {"updated": 5}}])
    assert len(kept) == 2 and tracker.value == 5
    with pytest.raises(IncrementalError, match="'meta.updated' is not in record id=3"):
        tracker.observe([{"id": 3, "meta": {}}])


def test_higher_cursor_of_different_kinds():
    assert higher_cursor(None, "1") == "1" and higher_cursor("1", None) == "1"
    with pytest.raises(IncrementalError, match="cannot compare"):
        higher_cursor("2026-01-05T10:00:00Z", "2026-01-05T10:00:00")


# -- the signpost: changes after the read began never move the cursor -----------------------

BEGAN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _tracked(values: list[Any], *, lag: float = 0.0, start: Any = None) -> CursorTracker:
    tracker = CursorTracker("updated_at", start, lag=lag)
    tracker.set_signpost(BEGAN)
    tracker.observe([{"id": n, "updated_at": v} for n, v in enumerate(values)], 1)
    return tracker


def test_values_at_or_past_the_signpost_do_not_move_the_cursor():
    tracker = _tracked(
        ["2026-03-01T11:00:00Z", "2026-03-01T12:00:00Z", "2026-03-01T13:00:00+01:00"]
    )
    # 12:00Z is the signpost itself; 13:00+01:00 is the same instant: both held back.
    assert tracker.value == "2026-03-01T11:00:00Z"
    assert tracker.seen_to in ("2026-03-01T12:00:00Z", "2026-03-01T13:00:00+01:00")
    tracker.observe([{"id": 9, "updated_at": "2026-03-01T11:59:59.999Z"}], 2)
    assert tracker.value == "2026-03-01T11:59:59.999Z"


def test_a_page_all_past_the_signpost_leaves_the_cursor_where_it_started():
    tracker = _tracked(["2026-03-02T00:00:00Z"], start="2026-02-01T00:00:00Z")
    assert tracker.value == "2026-02-01T00:00:00Z"
    assert tracker.seen_to == "2026-03-02T00:00:00Z"


def test_lag_moves_the_signpost_back():
    tracker = _tracked(["2026-03-01T11:50:00Z", "2026-03-01T11:40:00Z"], lag=900)
    assert tracker.value == "2026-03-01T11:40:00Z"  # 11:50 is within the 15 minutes


def test_a_date_alone_is_held_to_the_signpost_as_midnight_utc():
    tracker = _tracked(["2026-02-28", "2026-03-01", "2026-03-02"])
    assert tracker.value == "2026-03-01"  # midnight, before noon


@pytest.mark.parametrize(
    "values",
    [["2026-03-01T13:00:00", "2026-03-01T11:00:00"], [1_900_000_000, 1_700_000_000]],
    ids=["without offset", "numbers"],
)
def test_times_without_an_offset_and_numbers_have_no_signpost(values):
    """Neither can be put beside a clock: the cursor is the highest value, as before."""
    assert _tracked(values).value == values[0]


def test_a_resumed_read_takes_the_signpost_and_what_was_seen_from_its_checkpoint():
    first = _tracked(["2026-03-01T11:00:00Z", "2026-03-01T12:30:00Z"])
    stored = first.checkpoint_fields()
    assert stored == {"signpost": BEGAN.isoformat(), "seen_to": "2026-03-01T12:30:00Z"}
    later = CursorTracker("updated_at", first.value)
    later.resume_from(stored)
    if later.signpost is None:  # as the reader does: a resumed read keeps its own
        later.set_signpost(BEGAN + timedelta(hours=5))
    later.observe([{"id": 1, "updated_at": "2026-03-01T14:00:00Z"}], 3)
    assert later.signpost == BEGAN
    assert later.value == "2026-03-01T11:00:00Z" and later.seen_to == "2026-03-01T14:00:00Z"
    ignored = CursorTracker("updated_at", None)
    ignored.resume_from({"signpost": "yesterday", "seen_to": True})
    assert ignored.signpost is None and ignored.seen_to is None


def test_a_date_past_the_signpost_beside_times_without_an_offset_is_no_error():
    """Review finding: the values below the signpost were compared with it whatever their
    kind, and a time without an offset beside a date past it raised."""
    tracker = _tracked(["2099-01-05", "2026-01-01T10:00:00"])
    assert tracker.value is None and tracker.seen_to == "2099-01-05"


def test_a_later_answer_only_lowers_the_signpost():
    tracker = CursorTracker("updated_at")
    tracker.set_signpost(BEGAN)
    tracker.set_signpost(BEGAN + timedelta(hours=1))
    assert tracker.signpost == BEGAN
    tracker.set_signpost(BEGAN - timedelta(seconds=30))  # the API's clock is behind ours
    assert tracker.signpost == BEGAN - timedelta(seconds=30)


def test_records_dated_in_the_future_are_named_in_a_warning():
    # Half a day after the read began: held back by a lag of three days, not in the future.
    tracker = _tracked(["2026-02-20T11:00:00Z", "2026-03-02T00:00:00Z"], lag=3 * 86400)
    assert tracker.value == "2026-02-20T11:00:00Z" and tracker.held_back_note() is None
    tracker = _tracked(["2026-03-01T11:00:00Z", "2099-01-01T00:00:00Z"])
    note = tracker.held_back_note()
    assert note is not None and "'2099-01-01T00:00:00Z'" in note and "reads them again" in note
    assert _tracked(["2026-03-01T12:30:00Z"]).held_back_note() is None


def test_an_api_clock_minutes_away_is_named_in_a_warning():
    from interlink.connectors._api_clock import behind_by, clock_note

    began = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    arrived = began + timedelta(minutes=20)  # a long wait for a rate limit in between
    assert clock_note(began, arrived, "Sun, 01 Mar 2026 11:58:00 GMT") is None
    behind = clock_note(began, arrived, "Sun, 01 Mar 2026 11:30:00 GMT")
    assert behind is not None and "30 minutes behind" in behind
    assert clock_note(began, arrived, "Sun, 01 Mar 2026 12:15:00 GMT") is None  # the wait
    ahead = clock_note(began, arrived, "Sun, 01 Mar 2026 13:20:00 GMT")
    assert ahead is not None and "60 minutes ahead of" in ahead
    assert clock_note(began, arrived, "not a date") is None
    assert clock_note(began, arrived, None) is None
    assert behind_by(began, "Sun, 01 Mar 2026 11:30:00 GMT") == timedelta(minutes=-30)
    assert behind_by(began, "Sun, 01 Mar 2026 12:30:00 GMT") == timedelta(0)


def test_the_starting_cursor_is_not_taken_for_a_record_dated_ahead():
    """Review finding: a cursor left far ahead (by a version before the signpost) warned
    on every run that records were dated after the read began."""
    tracker = _tracked(["2026-03-01T11:00:00Z"], start="2099-01-01T00:00:00Z")
    assert tracker.held_back_note() is None
