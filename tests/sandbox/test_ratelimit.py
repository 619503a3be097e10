import asyncio
import math
import time

import httpx
import pytest

from interlink.sandbox import RateLimitDecision, TokenBucket, create_shop_app, rate_limit_headers

from .conftest import ServeShop, ShopClient


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=2, per=1, burst=3)
    assert [bucket.take(100.0).remaining for _ in range(3)] == [2, 1, 0]
    denied = bucket.take(100.0)
    assert denied == RateLimitDecision(allowed=False, remaining=0, reset_after=0.5)
    assert denied.retry_after == 1
    assert not bucket.take(100.25).allowed
    assert bucket.take(100.5).allowed
    # Long idle time refills to the burst, never beyond.
    assert bucket.take(1000.0).remaining == 2


def test_bucket_reset_after_counts_to_the_next_whole_token() -> None:
    bucket = TokenBucket(rate=1, per=10, burst=5)
    decision = bucket.take(0.0)
    assert decision.remaining == 4
    assert decision.reset_after == pytest.approx(10.0)
    assert bucket.take(4.0).reset_after == pytest.approx(6.0)
    bucket.reset()
    assert bucket.take(5.0).remaining == 4


def test_retry_after_is_rounded_up_and_at_least_one() -> None:
    assert RateLimitDecision(False, 0, 0.01).retry_after == 1
    assert RateLimitDecision(False, 0, 2.2).retry_after == 3


def test_window_is_the_time_to_refill_the_burst() -> None:
    assert TokenBucket(rate=10, per=1, burst=10).window == 1
    assert TokenBucket(rate=5, per=1, burst=20).window == 4
    assert TokenBucket(rate=100, per=1, burst=1).window == 1


def test_bucket_rejects_bad_parameters() -> None:
    for rate, per, burst in ((0, 1, 1), (1, 0, 1), (1, 1, 0)):
        with pytest.raises(ValueError):
            TokenBucket(rate, per, burst)


def test_header_values() -> None:
    decision = RateLimitDecision(allowed=False, remaining=0, reset_after=1.25)
    headers = dict(rate_limit_headers(decision, burst=10, window=5, wall_time=1000.5))
    assert headers == {
        b"x-ratelimit-limit": b"10",
        b"x-ratelimit-remaining": b"0",
        b"x-ratelimit-reset": b"1001.750",
        b"ratelimit-policy": b'"default";q=10;w=5',
        b"ratelimit": b'"default";r=0;t=2',
        b"retry-after": b"2",
    }
    allowed = RateLimitDecision(allowed=True, remaining=7, reset_after=0.2)
    headers = dict(rate_limit_headers(allowed, burst=10, window=5, wall_time=1000.0))
    assert headers[b"ratelimit"] == b'"default";r=7;t=1'
    assert b"retry-after" not in headers


def test_header_styles() -> None:
    decision = RateLimitDecision(allowed=True, remaining=1, reset_after=0.0)
    names = {
        style: {
            name
            for name, _ in rate_limit_headers(
                decision, burst=2, window=1, wall_time=0.0, style=style
            )
        }
        for style in ("x-ratelimit", "ietf", "both")
    }
    assert names["x-ratelimit"] == {
        b"x-ratelimit-limit",
        b"x-ratelimit-remaining",
        b"x-ratelimit-reset",
    }
    assert names["ietf"] == {b"ratelimit-policy", b"ratelimit"}
    assert names["both"] == names["x-ratelimit"] | names["ietf"]


def test_server_answers_429_with_every_header(serve_shop: ServeShop) -> None:
    # One token per 30 seconds: nothing refills while the test runs.
    server = serve_shop(rate_limit=(1, 30, 3))
    with httpx.Client(base_url=server.url) as client:
        answers = [client.get("/customers/1") for _ in range(5)]
        stats = client.get("/_stats").json()

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    assert [answer.headers["x-ratelimit-remaining"] for answer in answers[:3]] == ["2", "1", "0"]
    for answer in answers[:3]:
        assert answer.headers["x-ratelimit-limit"] == "3"
        assert answer.headers["ratelimit-policy"] == '"default";q=3;w=90'
        assert "retry-after" not in answer.headers
    assert answers[0].headers["ratelimit"] == '"default";r=2;t=30'

    limited = answers[3]
    assert limited.json()["error"]["code"] == "rate_limited"
    retry_after = int(limited.headers["retry-after"])
    assert retry_after == 30
    assert limited.headers["x-ratelimit-limit"] == "3"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    reset = limited.headers["x-ratelimit-reset"]
    assert len(reset.split(".")[1]) == 3
    assert float(reset) == pytest.approx(time.time() + 30, abs=2)
    assert limited.headers["ratelimit-policy"] == '"default";q=3;w=90'
    assert limited.headers["ratelimit"] == f'"default";r=0;t={retry_after}'
    assert math.ceil(float(reset) - time.time()) <= retry_after
    assert stats["rate_limited"] == 2 and stats["requests"] == 5


async def test_admin_paths_are_never_limited(shop_client: ShopClient) -> None:
    client = shop_client(rate_limit=(1, 60, 1))
    assert (await client.get("/customers")).status_code == 200
    assert (await client.get("/customers")).status_code == 429
    for _ in range(3):
        stats = await client.get("/_stats")
        assert stats.status_code == 200 and "x-ratelimit-limit" not in stats.headers
    await client.post("/_reset")
    assert (await client.get("/customers")).status_code == 200


async def test_the_bucket_refills(shop_client: ShopClient) -> None:
    client = shop_client(rate_limit=(20, 1, 1))
    assert (await client.get("/echo")).status_code == 200
    assert (await client.get("/echo")).status_code == 429
    await asyncio.sleep(0.06)
    assert (await client.get("/echo")).status_code == 200


async def test_selected_header_style_only(shop_client: ShopClient) -> None:
    ietf = await shop_client(rate_limit=(1, 1, 5), rate_limit_headers="ietf").get("/echo")
    assert "ratelimit" in ietf.headers and "x-ratelimit-limit" not in ietf.headers
    legacy = await shop_client(rate_limit=(1, 1, 5), rate_limit_headers="x-ratelimit").get("/echo")
    assert "x-ratelimit-limit" in legacy.headers and "ratelimit" not in legacy.headers


def test_unknown_header_style_is_rejected() -> None:
    with pytest.raises(ValueError):
        create_shop_app(rate_limit=(1, 1, 5), rate_limit_headers="github")  # type: ignore[arg-type]


def test_float_noise_does_not_add_a_second() -> None:
    decision = RateLimitDecision(allowed=True, remaining=2, reset_after=30.000000000000004)
    headers = dict(rate_limit_headers(decision, burst=3, window=90, wall_time=0.0))
    assert headers[b"ratelimit"] == b'"default";r=2;t=30'
    assert RateLimitDecision(allowed=False, remaining=0, reset_after=3.0000000001).retry_after == 3
    assert TokenBucket(rate=3, per=0.9, burst=3).window == 1
