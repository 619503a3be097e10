"""`-vv`'s header lines: every attempt's request and response headers, credentials masked;
nothing of them when the headers' logger is off."""

from __future__ import annotations

import logging

import httpx

from interlink.http import ApiClient, ApiKeyAuth, Redactor

KEY = "header-log-key-123456"


def test_credential_headers_are_masked_and_link_urls_lose_secret_params() -> None:
    shown = dict(
        Redactor().headers(
            [
                ("Authorization", "Bearer abc.def"),
                ("Cookie", "session=1"),
                ("Set-Cookie", "sid=2"),
                ("X-API-Key", "k"),
                ("X-Auth-Token", "t"),
                ("Link", '<https://api.test/x?page=2&access_token=zzz>; rel="next"'),
                ("Content-Type", "application/json"),
            ]
        )
    )
    assert shown == {
        "Authorization": "***",
        "Cookie": "***",
        "Set-Cookie": "***",
        "X-API-Key": "***",
        "X-Auth-Token": "***",
        "Link": '<https://api.test/x?page=2&access_token=***>; rel="next"',
        "Content-Type": "application/json",
    }


def _app(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={"ok": True},
        headers={"X-RateLimit-Remaining": "9", "Set-Cookie": "sid=secret-cookie"},
    )


async def test_headers_are_logged_masked_only_when_their_logger_is_on(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="interlink.http")
    headers_logger = logging.getLogger("interlink.http.headers")
    headers_logger.setLevel(logging.INFO)
    try:
        async with ApiClient(
            "https://api.test",
            auth=ApiKeyAuth(KEY, name="X-API-Key"),
            transport=httpx.MockTransport(_app),
        ) as api:
            await api.get("/items")
            assert [r.name for r in caplog.records] == ["interlink.http"], caplog.text
            headers_logger.setLevel(logging.DEBUG)
            await api.get("/items")
    finally:
        headers_logger.setLevel(logging.NOTSET)
    headers = [r.getMessage() for r in caplog.records if r.name == "interlink.http.headers"]
    assert len(headers) == 1
    text = headers[0]
    assert text.startswith("GET https://api.test/items headers:")
    assert "> x-api-key: ***" in text and "< HTTP 200" in text
    assert "< x-ratelimit-remaining: 9" in text and "< set-cookie: ***" in text
    assert KEY not in caplog.text and "secret-cookie" not in caplog.text
