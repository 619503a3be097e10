from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
from hypothesis import given, strategies as st

from interlink.http import parse_rate_limit, parse_retry_after

NOW = 1_800_000_000.0


def test_retry_after_seconds():
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after(" 0 ", NOW) == 0.0
    assert parse_retry_after("1.5", NOW) == 1.5


def test_retry_after_http_date_in_the_future_and_past():
    future = format_datetime(datetime.fromtimestamp(NOW + 90, tz=UTC), usegmt=True)
    assert parse_retry_after(future, NOW) == 90.0
    past = format_datetime(datetime.fromtimestamp(NOW - 90, tz=UTC), usegmt=True)
    assert parse_retry_after(past, NOW) == 0.0


def test_retry_after_garbage_is_ignored():
    for value in ["", "soon", "-5", "1e9999", "Wed, 99 Foo 2026", "12 seconds", None]:
        assert parse_retry_after(value, NOW) is None


@given(st.integers(min_value=0, max_value=10**9))
def test_retry_after_seconds_round_trip(seconds):
    assert parse_retry_after(str(seconds), NOW) == float(seconds)


@given(st.integers(min_value=-(10**6), max_value=10**7))
def test_retry_after_date_round_trip(delta):
    when = datetime.fromtimestamp(NOW + delta, tz=UTC)
    parsed = parse_retry_after(format_datetime(when, usegmt=True), NOW)
    assert parsed == max(0.0, float(delta))


@given(st.text())
def test_retry_after_never_raises_and_is_never_negative(value):
    parsed = parse_retry_after(value, NOW)
    assert parsed is None or parsed >= 0


def _h(**fields: str) -> httpx.Headers:
    return httpx.Headers({k.replace("_", "-"): v for k, v in fields.items()})


def test_x_ratelimit_reset_as_delta_epoch_and_epoch_ms():
    delta = parse_rate_limit(_h(x_ratelimit_remaining="3", x_ratelimit_reset="20"), NOW)
    assert delta is not None and delta.remaining == 3 and delta.reset_after == 20
    epoch = parse_rate_limit(
        _h(x_ratelimit_limit="60", x_ratelimit_remaining="0", x_ratelimit_reset=str(NOW + 42)),
        NOW,
    )
    assert epoch is not None and epoch.reset_after == 42 and epoch.limit == 60
    millis = parse_rate_limit(
        _h(x_ratelimit_remaining="0", x_ratelimit_reset=str(int((NOW + 7) * 1000))), NOW
    )
    assert millis is not None and millis.reset_after == 7
    past = parse_rate_limit(_h(x_ratelimit_remaining="0", x_ratelimit_reset=str(NOW - 5)), NOW)
    assert past is not None and past.reset_after == 0


def test_ratelimit_separate_fields_without_x_prefix():
    info = parse_rate_limit(
        _h(ratelimit_limit="100", ratelimit_remaining="10", ratelimit_reset="30"), NOW
    )
    assert info is not None and (info.limit, info.remaining, info.reset_after) == (100, 10, 30)


def test_ietf_structured_fields():
    info = parse_rate_limit(
        _h(ratelimit='"default";r=5;t=30', ratelimit_policy='"default";q=100;w=60'), NOW
    )
    assert info is not None
    assert (info.remaining, info.reset_after, info.limit) == (5, 30, 100)


def test_ietf_most_constraining_policy_wins():
    info = parse_rate_limit(_h(ratelimit='"hour";r=900;t=3000, "minute";r=0;t=12'), NOW)
    assert info is not None and (info.remaining, info.reset_after) == (0, 12)


def test_ietf_legacy_inline_syntax():
    info = parse_rate_limit(_h(ratelimit="limit=100, remaining=50, reset=30"), NOW)
    assert info is not None and (info.limit, info.remaining, info.reset_after) == (100, 50, 30)


def test_ietf_wins_over_x_ratelimit():
    info = parse_rate_limit(
        _h(ratelimit='"default";r=1;t=2', x_ratelimit_remaining="99", x_ratelimit_reset="60"), NOW
    )
    assert info is not None and info.remaining == 1


def test_malformed_fields_are_ignored():
    assert parse_rate_limit(_h(ratelimit="garbage;;;"), NOW) is None
    assert parse_rate_limit(_h(x_ratelimit_remaining="lots"), NOW) is None
    assert parse_rate_limit(_h(), NOW) is None
    # A malformed structured field falls back to the legacy fields.
    info = parse_rate_limit(_h(ratelimit="%%%", x_ratelimit_remaining="4"), NOW)
    assert info is not None and info.remaining == 4


@given(
    remaining=st.integers(min_value=0, max_value=10**6),
    reset=st.integers(min_value=0, max_value=10**6),
    quota=st.integers(min_value=1, max_value=10**6),
)
def test_ietf_round_trip(remaining, reset, quota):
    headers = _h(
        ratelimit=f'"default";r={remaining};t={reset}',
        ratelimit_policy=f'"default";q={quota};w=60',
    )
    info = parse_rate_limit(headers, NOW)
    assert info is not None
    assert (info.remaining, info.reset_after, info.limit) == (remaining, reset, quota)


@given(
    remaining=st.integers(min_value=0, max_value=10**6),
    reset_delta=st.integers(min_value=0, max_value=10**6),
    as_epoch=st.booleans(),
)
def test_x_ratelimit_round_trip(remaining, reset_delta, as_epoch):
    reset = str(int(NOW) + reset_delta) if as_epoch else str(reset_delta)
    info = parse_rate_limit(_h(x_ratelimit_remaining=str(remaining), x_ratelimit_reset=reset), NOW)
    assert info is not None
    assert info.remaining == remaining
    assert info.reset_after == reset_delta


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "ratelimit",
                "ratelimit-policy",
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
                "ratelimit-remaining",
                "ratelimit-reset",
                "x-ratelimit-limit",
            ]
        ),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)),
    )
)
def test_rate_limit_parsing_never_raises(fields):
    info = parse_rate_limit(httpx.Headers(fields), NOW)
    if info is not None:
        assert info.reset_after >= 0
