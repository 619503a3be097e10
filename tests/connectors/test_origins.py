"""Next links to another origin are refused, and never receive the connection's credentials.

Issue 11: a `next` URL or `Link` on another host received the connection's `Authorization`
header. Two real servers on 127.0.0.1: A is the connection's `base_url`, and its first page
links the next one to B (another port, so another origin). By default the read fails
with an error naming B's origin (never the link's query) and B is never asked anything;
with B in the connection's `allowed_origins` the link is followed, credentials and all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlink.config import InterlinkConfig
from interlink.connectors import (
    BasePaginator,
    Catalog,
    Fetched,
    Record,
    RequestSpec,
    RestResource,
)
from interlink.errors import PaginationError
from interlink.sandbox import SandboxServer

TOKEN = "bearer-SECRET-5b2d8e44"
LINK_QUERY = "sig=link-query-must-not-show"

STYLES: dict[str, dict[str, Any]] = {
    "next_url": {"records": "results", "paginate": {"type": "next_url", "next_path": "next"}},
    "jsonapi": {
        "format": "jsonapi",
        "paginate": {"type": "next_url", "next_path": "links.next"},
    },
    "link_header": {"records": "results", "paginate": {"type": "link_header"}},
}


class LinkingApi:
    """Serves `/items?page=N` (pages 1-3) and links each page to the next one on `next_base`.

    The link goes in the body (`next`, and JSON:API `links.next`) and in the `Link` header.
    Every request's `Authorization` header is kept.
    """

    def __init__(self) -> None:
        self.next_base = ""
        self.authorization: list[str | None] = []

    def app(self) -> Starlette:
        async def items(request: Request) -> JSONResponse:
            self.authorization.append(request.headers.get("authorization"))
            page = int(request.query_params.get("page", "1"))
            following = f"{self.next_base}/items?page={page + 1}&{LINK_QUERY}" if page < 3 else None
            body = {
                "results": [{"id": page}],
                "data": [{"type": "items", "id": str(page), "attributes": {}}],
                "next": following,
                "links": {"next": following},
            }
            headers = {"Link": f'<{following}>; rel="next"'} if following else {}
            return JSONResponse(body, headers=headers)

        return Starlette(routes=[Route("/items", items)])


@pytest.fixture
def servers() -> Iterator[tuple[tuple[str, LinkingApi], tuple[str, LinkingApi]]]:
    a, b = LinkingApi(), LinkingApi()
    with SandboxServer(a.app()) as server_a, SandboxServer(b.app()) as server_b:
        a.next_base = server_b.url  # A's first page links to B
        b.next_base = server_b.url
        yield (server_a.url, a), (server_b.url, b)


def catalog(url: str, resource: dict[str, Any], **connection: Any) -> Catalog:
    config = InterlinkConfig.model_validate(
        {
            "connections": {
                "a": {
                    "base_url": url,
                    "auth": {"type": "bearer", "token": TOKEN},
                    "retry": {"max_attempts": 1},
                    **connection,
                }
            },
            "resources": {"a": {"items": {"path": "/items", **resource}}},
        }
    )
    return Catalog(config)


async def read_ids(catalog: Catalog) -> list[Any]:
    async with catalog:
        return [record["id"] async for record in catalog.resource("a.items").records()]


@pytest.mark.parametrize("style", sorted(STYLES))
async def test_a_link_to_another_origin_is_refused(servers, style: str) -> None:
    (url_a, a), (url_b, b) = servers
    with pytest.raises(PaginationError) as caught:
        await read_ids(catalog(url_a, STYLES[style]))
    message = str(caught.value)
    assert url_b in message and url_a in message
    assert "allowed_origins" in message and "a.items" in message
    assert LINK_QUERY not in message and "/items?" not in message and TOKEN not in message
    assert "\n" not in message
    assert a.authorization == [f"Bearer {TOKEN}"]
    assert b.authorization == []  # B was never asked anything


@pytest.mark.parametrize("style", sorted(STYLES))
async def test_a_link_to_an_allowed_origin_is_followed(servers, style: str) -> None:
    (url_a, a), (url_b, b) = servers
    ids = await read_ids(catalog(url_a, STYLES[style], allowed_origins=[url_b]))
    assert [str(i) for i in ids] == ["1", "2", "3"]
    assert a.authorization == [f"Bearer {TOKEN}"]
    assert b.authorization == [f"Bearer {TOKEN}", f"Bearer {TOKEN}"]


async def test_a_checkpoint_on_another_origin_is_refused(servers) -> None:
    """A stored checkpoint (written before the fix, or edited) is a link like any other."""
    (url_a, a), (url_b, b) = servers
    async with catalog(url_a, STYLES["next_url"]) as cat:
        resource = cat.resource("a.items")
        with pytest.raises(PaginationError, match="another origin"):
            async for _ in resource.pages(resume={"url": f"{url_b}/items?page=2&{LINK_QUERY}"}):
                pass
    assert a.authorization == [] and b.authorization == []


class ForeignPaginator(BasePaginator):
    """A custom paginator with a bug: it sends the second page to a host of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pages = 0

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        self.pages += 1
        self.has_next_page = self.pages < 2

    def update_request(self, spec: RequestSpec) -> None:
        spec.url = f"{self.url}/items?page=2"


async def test_a_custom_paginator_cannot_send_credentials_elsewhere(servers) -> None:
    (url_a, a), (url_b, b) = servers
    async with catalog(url_a, {"records": "results"}) as cat:
        resource = cat.resource("a.items")
        assert isinstance(resource, RestResource)
        resource.paginator = lambda: ForeignPaginator(url_b)  # type: ignore[method-assign]
        with pytest.raises(PaginationError, match="another origin"):
            async for _ in resource.pages():
                pass
    assert b.authorization == []
