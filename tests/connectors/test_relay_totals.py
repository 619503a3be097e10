"""A GraphQL Relay read checks the connection's `totalCount`: a server that says there is
no next page before every record arrived is an incomplete read, not a success.

A small real GraphQL-shaped server on 127.0.0.1 serves 50 records, 10 a page, as a Relay
connection; in the faulty modes it ends the list early (`hasNextPage: false` on page 2)
or loses records from a page while `totalCount` still says 50. Each test asserts the
server really served the pages it describes, so the test can fail.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import IncompleteReadError
from interlink.sandbox import SandboxServer

QUERY = """
query($first: Int, $after: String) {
  items(first: $first, after: $after) {
    totalCount
    edges { node { id } }
    pageInfo { hasNextPage endCursor }
  }
}"""


class RelayList:
    """50 items by Relay cursor (`after` = the last id). `mode`: "whole"; "ends-early"
    (page 2 says there is nothing after it); "loses" (page 3 leaves out two records);
    "no-count" (ends early, no totalCount); "count-elsewhere" (ends early, the total at
    `data.items.stats.count` instead of `totalCount`)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.pages = 0

    def app(self) -> Starlette:
        async def graphql(request: Request) -> JSONResponse:
            variables = (await request.json()).get("variables") or {}
            first = int(variables.get("first") or 10)
            after = int(variables.get("after") or 0)
            ids = list(range(after + 1, min(after + first, 50) + 1))
            self.pages += 1
            more = ids[-1] < 50 if ids else False
            if self.mode in ("ends-early", "no-count", "count-elsewhere") and self.pages == 2:
                more = False
            if self.mode == "loses" and self.pages == 3:
                ids = ids[2:]
            connection: dict[str, Any] = {
                "edges": [{"node": {"id": i}} for i in ids],
                "pageInfo": {"hasNextPage": more, "endCursor": str(ids[-1]) if ids else None},
            }
            if self.mode == "count-elsewhere":
                connection["stats"] = {"count": 50}
            elif self.mode != "no-count":
                connection["totalCount"] = 50
            return JSONResponse({"data": {"items": connection}})

        return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])


def _catalog(url: str, **paginate: Any) -> Catalog:
    resource: dict[str, Any] = {
        "type": "graphql",
        "query": QUERY,
        "paginate": {"type": "relay", "path": "data.items", "page_size": 10, **paginate},
    }
    on_mismatch = paginate.pop("on_total_mismatch", None)
    if on_mismatch:
        resource["paginate"].pop("on_total_mismatch")
        resource["on_total_mismatch"] = on_mismatch
    config = InterlinkConfig.model_validate(
        {
            "connections": {"api": {"base_url": url, "retry": {"max_attempts": 1}}},
            "resources": {"api": {"items": resource}},
        }
    )
    return Catalog(config)


async def _read(catalog: Catalog) -> list[int]:
    ids: list[int] = []
    async with catalog:
        async for page in catalog.resource("api.items").pages():
            ids.extend(record["id"] for record in page.records)
    return ids


async def test_a_whole_relay_read_agrees_with_its_total_count():
    api = RelayList("whole")
    with SandboxServer(api.app()) as server:
        ids = await _read(_catalog(server.url))
    assert ids == list(range(1, 51)) and api.pages == 5


async def test_a_list_ended_early_is_an_incomplete_read():
    api = RelayList("ends-early")
    with SandboxServer(api.app()) as server:
        with pytest.raises(IncompleteReadError) as caught:
            await _read(_catalog(server.url))
    assert api.pages == 2, "the server said there was nothing after page 2"
    assert "20 records arrived but `data.items.totalCount` says 50" in str(caught.value)
    assert (caught.value.expected, caught.value.got) == (50, 20)


async def test_records_left_out_of_a_page_are_an_incomplete_read():
    api = RelayList("loses")
    with SandboxServer(api.app()) as server:
        with pytest.raises(IncompleteReadError, match="48 records arrived"):
            await _read(_catalog(server.url))
    assert api.pages == 5


async def test_without_a_total_count_nothing_can_be_compared():
    api = RelayList("no-count")
    with SandboxServer(api.app()) as server:
        ids = await _read(_catalog(server.url))
    assert api.pages == 2 and ids == list(range(1, 21))


async def test_a_total_elsewhere_is_named_with_total_path():
    api = RelayList("count-elsewhere")
    with SandboxServer(api.app()) as server:
        with pytest.raises(IncompleteReadError, match="`data.items.stats.count` field says 50"):
            await _read(_catalog(server.url, total_path="data.items.stats.count"))
    assert api.pages == 2


async def test_on_total_mismatch_warn_lets_the_read_end_with_a_warning(caplog):
    caplog.set_level(logging.WARNING, logger="interlink.connectors")
    api = RelayList("ends-early")
    with SandboxServer(api.app()) as server:
        ids = await _read(_catalog(server.url, on_total_mismatch="warn"))
    assert ids == list(range(1, 21)) and api.pages == 2
    assert any("says 50" in r.getMessage() for r in caplog.records)
