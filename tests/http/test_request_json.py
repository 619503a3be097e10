"""`ApiClient.request_json`: None for a 204 or an empty body, the parsed JSON otherwise."""

from __future__ import annotations

import httpx
import pytest

from interlink.errors import ApiError, NotFoundError
from interlink.http import ApiClient


def answering(status: int, content: bytes, content_type: str = "application/json") -> ApiClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"Content-Type": content_type})

    return ApiClient("https://api.example.com", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "content", "expected"),
    [
        (204, b"", None),
        (200, b"", None),
        (202, b"  \n", None),
        (200, b'{"id": 123}', {"id": 123}),
        (201, b"[1, 2]", [1, 2]),
        (200, b"null", None),
        (200, b"0", 0),
    ],
)
async def test_request_json(status, content, expected):
    async with answering(status, content) as api:
        assert await api.request_json("DELETE", "/products/123") == expected


async def test_a_body_that_is_not_json_names_the_url():
    async with answering(200, b"<html>maintenance</html>", "text/html") as api:
        with pytest.raises(ApiError, match=r"GET https://api.example.com/x -> 200 .*not JSON"):
            await api.request_json("GET", "/x")


async def test_failed_statuses_raise_as_request_does():
    async with answering(404, b'{"message": "no such product"}') as api:
        with pytest.raises(NotFoundError, match="no such product"):
            await api.request_json("GET", "/products/9")
