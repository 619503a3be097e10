"""`rate_limit.warn_below`: one WARNING per window when the quota an API reports runs low.

The Odoo guide logs "Rate limit nearly exceeded. Remaining: N, Resets at: T" when
`X-RateLimit-Remaining` falls below 10; interlink does it once per window, not once per
request (issue 16, section 4). The server here is real (uvicorn on 127.0.0.1) and sends
whatever quota the test tells it to.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from interlink.config import parse_config
from interlink.http import ApiClient, RateLimiter, RateLimitInfo
from interlink.http._ratelimit import QuotaWarning
from interlink.sandbox import SandboxServer

Scope = dict[str, Any]


class QuotaApp:
    """Answers every GET with `{}` and the rate-limit headers of the quota it is given."""

    def __init__(self, style: str) -> None:
        self.style = style
        self.limit = 10
        self.remaining = 10
        self.reset_at = time.time() + 60

    def set(self, remaining: int, *, reset_in: float | None = None) -> None:
        self.remaining = remaining
        if reset_in is not None:
            self.reset_at = time.time() + reset_in

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seconds = max(1, round(self.reset_at - time.time()))
        if self.style == "x-ratelimit":
            quota = [
                (b"x-ratelimit-limit", str(self.limit).encode()),
                (b"x-ratelimit-remaining", str(self.remaining).encode()),
                (b"x-ratelimit-reset", str(int(self.reset_at)).encode()),  # epoch seconds
            ]
        else:
            quota = [(b"ratelimit", f'"default";r={self.remaining};t={seconds}'.encode())]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), *quota],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "interlink.http" and record.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("style", ["x-ratelimit", "ietf"])
async def test_one_warning_per_window_naming_connection_remaining_and_reset(style, caplog):
    caplog.set_level(logging.WARNING, logger="interlink.http")
    app = QuotaApp(style)
    async with SandboxServer(app) as server:
        limiter = RateLimiter(name="odoo", warn_below=3)
        async with ApiClient(server.url, name="odoo", rate_limiter=limiter) as api:
            for remaining in (6, 5, 4, 3):
                app.set(remaining)
                await api.get_json("/products")
            assert warnings_in(caplog) == []

            for remaining in (2, 2, 1, 1):  # one window: many requests, one warning
                app.set(remaining)
                await api.get_json("/products")
            [line] = warnings_in(caplog)

            app.set(9, reset_in=60)  # a new window: quota back up, no warning
            await api.get_json("/products")
            app.set(2)  # low again in the new window: warned again, once
            await api.get_json("/products")
            await api.get_json("/products")
            assert len(warnings_in(caplog)) == 2

    assert "connection 'odoo'" in line
    assert "2 of 10 requests left" in line if style == "x-ratelimit" else "2 requests left" in line
    assert "below warn_below (3)" in line
    reset = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(app.reset_at))
    assert f"resets at {reset}" in line, line


async def test_a_window_that_resets_while_still_low_warns_again(caplog):
    caplog.set_level(logging.WARNING, logger="interlink.http")
    app = QuotaApp("x-ratelimit")
    async with SandboxServer(app) as server:
        limiter = RateLimiter(name="odoo", warn_below=5)
        async with ApiClient(server.url, name="odoo", rate_limiter=limiter) as api:
            app.set(2, reset_in=1.0)
            await api.get_json("/a")
            await api.get_json("/a")
            assert len(warnings_in(caplog)) == 1
            # Past the reset the server reports its next window, which is low too.
            time.sleep(max(0.0, app.reset_at - time.time()) + 0.1)
            app.set(3, reset_in=60)
            await api.get_json("/a")
            await api.get_json("/a")
    assert len(warnings_in(caplog)) == 2


async def test_no_warn_below_no_warning(caplog):
    caplog.set_level(logging.WARNING, logger="interlink.http")
    app = QuotaApp("x-ratelimit")
    async with SandboxServer(app) as server:
        async with ApiClient(server.url, rate_limiter=RateLimiter(name="odoo")) as api:
            app.set(1)
            await api.get_json("/a")
    assert warnings_in(caplog) == []


def test_answers_to_earlier_requests_do_not_rearm_it() -> None:
    warning = QuotaWarning(3)
    low, high = RateLimitInfo(2, 30.0, 10), RateLimitInfo(8, 30.0, 10)
    assert warning.observe(5, low, 1000.0)
    assert not warning.observe(4, high, 1000.1)  # sent before the one that warned
    assert not warning.observe(6, low, 1000.2)
    assert not warning.observe(7, low, 1029.0)
    assert warning.observe(8, low, 1030.5)  # the window named in the warning has reset


def test_an_unknown_reset_warns_again_only_after_the_quota_recovers() -> None:
    warning = QuotaWarning(3)
    assert warning.observe(0, RateLimitInfo(1, 0.0), 1000.0)
    assert not warning.observe(1, RateLimitInfo(1, 0.0), 5000.0)
    assert not warning.observe(2, RateLimitInfo(10, 0.0), 5001.0)
    assert warning.observe(3, RateLimitInfo(2, 0.0), 5002.0)


def test_shared_limiters_take_the_threshold_of_the_config() -> None:
    first = RateLimiter.shared("warn-shared", warn_below=4)
    again = RateLimiter.shared("warn-shared", warn_below=7)
    assert again is first
    assert first.quota_warning is not None and first.quota_warning.threshold == 7
    assert RateLimiter.shared("warn-none").quota_warning is None


def test_warn_below_alone_is_a_rate_limit_without_a_client_side_bucket() -> None:
    text = "connections:\n  odoo:\n    base_url: https://x\n    rate_limit: {warn_below: 10}\n"
    limit = parse_config(text, file="interlink.yaml", env={}).connections["odoo"].rate_limit
    assert limit is not None
    assert (limit.rate, limit.warn_below) == (None, 10)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "{}",
            "connections.odoo.rate_limit: expected rate (a client-side limit), warn_below "
            "(a warning when the API's quota runs low) or both",
        ),
        ("{warn_below: 0}", "connections.odoo.rate_limit.warn_below: expected a number at least 1"),
        (
            "{warn_below: 5, burst: 3}",
            "connections.odoo.rate_limit: burst needs rate: it shapes the client-side limit",
        ),
    ],
)
def test_rate_limit_needs_something_to_do(value, expected) -> None:
    from interlink.errors import ConfigError

    text = f"connections:\n  odoo:\n    base_url: https://x\n    rate_limit: {value}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="interlink.yaml", env={})
    assert str(info.value).startswith(f"interlink.yaml:4: {expected}")


async def test_warn_below_from_the_config_reaches_the_client(caplog):
    """interlink.yaml's `rate_limit.warn_below` through `client_from_config`, as runs build
    their clients."""
    from interlink.config import InterlinkConfig
    from interlink.http import client_from_config

    caplog.set_level(logging.WARNING, logger="interlink.http")
    app = QuotaApp("x-ratelimit")
    async with SandboxServer(app) as server:
        config = InterlinkConfig.model_validate(
            {"connections": {"erp": {"base_url": server.url, "rate_limit": {"warn_below": 3}}}}
        )
        async with client_from_config("erp-config", config.connections["erp"]) as api:
            app.set(2)
            await api.get_json("/products")
            await api.get_json("/products")
    [line] = warnings_in(caplog)
    assert "connection 'erp-config'" in line and "below warn_below (3)" in line
