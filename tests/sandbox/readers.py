"""Clients for each of the shop's list styles, written the way a connector would read them.

Each reader follows its style's own "is there more?" signal to the end and returns the
ids it saw, in order, and how many requests it sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

Reader = Callable[[httpx.AsyncClient, dict[str, Any]], Awaitable[tuple[list[int], int]]]

PAGE = 100


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


async def read_offset(
    client: httpx.AsyncClient, params: dict[str, Any], path: str = "/customers"
) -> tuple[list[int], int]:
    ids: list[int] = []
    offset = requests = 0
    while True:
        page = _ok(await client.get(path, params={**params, "offset": offset, "limit": PAGE}))
        requests += 1
        assert (page["offset"], page["limit"]) == (offset, PAGE)
        ids += [record["id"] for record in page["data"]]
        offset += PAGE
        if offset >= page["total"]:
            return ids, requests


async def read_pages(client: httpx.AsyncClient, params: dict[str, Any]) -> tuple[list[int], int]:
    ids: list[int] = []
    page_number = 1
    while True:
        page = _ok(
            await client.get(
                "/customers/pages", params={**params, "page": page_number, "per_page": PAGE}
            )
        )
        assert (page["page"], page["per_page"]) == (page_number, PAGE)
        ids += [record["id"] for record in page["customers"]]
        if page_number >= page["total_pages"]:
            return ids, page_number
        page_number += 1


async def read_cursor(client: httpx.AsyncClient, params: dict[str, Any]) -> tuple[list[int], int]:
    ids: list[int] = []
    requests = 0
    query: dict[str, Any] = {**params, "limit": PAGE}
    while True:
        page = _ok(await client.get("/customers/cursor", params=query))
        requests += 1
        ids += [record["id"] for record in page["data"]]
        if page["next_cursor"] is None:
            return ids, requests
        # The cursor carries the filter: later requests send only the cursor.
        query = {"cursor": page["next_cursor"], "limit": PAGE}


async def read_link(
    client: httpx.AsyncClient, params: dict[str, Any], path: str = "/customers/link"
) -> tuple[list[int], int]:
    ids: list[int] = []
    requests = 0
    response = await client.get(path, params={**params, "per_page": PAGE})
    while True:
        records = _ok(response)
        requests += 1
        assert isinstance(records, list)
        ids += [record["id"] for record in records]
        next_link = response.links.get("next")
        if next_link is None:
            return ids, requests
        assert next_link["url"].startswith("http://")
        response = await client.get(next_link["url"])


async def read_next_url(
    client: httpx.AsyncClient, params: dict[str, Any], path: str = "/customers/next-url"
) -> tuple[list[int], int]:
    ids: list[int] = []
    requests = 0
    response = await client.get(path, params={**params, "limit": PAGE})
    while True:
        page = _ok(response)
        requests += 1
        ids += [record["id"] for record in page["results"]]
        if page["next"] is None:
            return ids, requests
        response = await client.get(page["next"])


async def read_wrapped(client: httpx.AsyncClient, params: dict[str, Any]) -> tuple[list[int], int]:
    ids: list[int] = []
    offset = requests = 0
    while True:
        body = _ok(
            await client.get(
                "/customers/wrapped", params={**params, "offset": offset, "limit": PAGE}
            )
        )
        requests += 1
        assert body["status"] == "success", body
        ids += [record["id"] for record in body["data"]["customers"]]
        offset += PAGE
        if offset >= body["data"]["total"]:
            return ids, requests


CUSTOMER_READERS: dict[str, Reader] = {
    "offset": read_offset,
    "pages": read_pages,
    "cursor": read_cursor,
    "link": read_link,
    "next_url": read_next_url,
    "wrapped": read_wrapped,
}
