"""A GraphQL Relay read that cannot be sure it is whole stops and says why, even without a
`totalCount` to check against (a helper's hunt found each of these ending "succeeded"
with records missing, or looping without end):

- `hasNextPage: true` with a null or empty `endCursor` ended the read as whole;
- `hasNextPage` missing or null was taken for "last page";
- an `endCursor` that came back after others looped for ever, as did empty pages that
  kept saying more follow;
- null edges were left out, and a connection with neither `edges` nor `nodes` was read as
  one record of the whole `data` object.

A small GraphQL-shaped server on 127.0.0.1 serves 50 items, 10 a page, without
`totalCount`, and misbehaves on one page as each test says; each test checks the server
really sent that page.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlink.config import InterlinkConfig
from interlink.sandbox import SandboxServer
from tests.connectors.recorded_run import recorded_run

QUERY = """
query($first: Int, $after: String) {
  items(first: $first, after: $after) {
    edges { node { id } }
    pageInfo { hasNextPage endCursor }
  }
}"""

Fault = Callable[[int, dict[str, Any]], dict[str, Any]]


class Items:
    """50 items by cursor `after` (the last id); `fault(page, connection)` rewrites the
    connection of each page (pages count from 1)."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.pages = 0

    def app(self) -> Starlette:
        async def graphql(request: Request) -> JSONResponse:
            variables = (await request.json()).get("variables") or {}
            after = str(variables.get("after") or 0)
            start = int(after) if after.isdigit() else 50  # a cursor of the faults: no more
            ids = list(range(start + 1, min(start + 10, 50) + 1))
            self.pages += 1
            connection = {
                "edges": [{"node": {"id": i}} for i in ids],
                "pageInfo": {
                    "hasNextPage": bool(ids) and ids[-1] < 50,
                    "endCursor": str(ids[-1]) if ids else None,
                },
            }
            return JSONResponse({"data": {"items": self.fault(self.pages, connection)}})

        return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])


def _on(page: int, change: Callable[[dict[str, Any]], None]) -> Fault:
    def fault(at: int, connection: dict[str, Any]) -> dict[str, Any]:
        if at == page:
            change(connection)
        return connection

    return fault


def _run(tmp_path: Path, api: Items, **paginate: Any) -> tuple[Any, int]:
    with SandboxServer(api.app()) as server:
        config = InterlinkConfig.model_validate(
            {
                "database": f"sqlite:///{tmp_path / 'relay.db'}",
                "connections": {"api": {"base_url": server.url, "retry": {"max_attempts": 1}}},
                "resources": {
                    "api": {
                        "items": {
                            "type": "graphql",
                            "query": QUERY,
                            "paginate": {
                                "type": "relay",
                                "path": "data.items",
                                "page_size": 10,
                                **paginate,
                            },
                        }
                    }
                },
                "pipelines": {"items": {"source": "api.items", "destination": "sql:items"}},
            }
        )
        run = recorded_run(config)
    return run, api.pages


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(connection: dict[str, Any]) -> None:
        node = connection
        for key in path[:-1]:
            node = node[key]
        if value is _DROP:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return change


_DROP = object()


@pytest.mark.parametrize(
    ("fault", "pages", "says"),
    [
        (_on(2, _set(("pageInfo", "endCursor"), None)), 2, "gives no endCursor"),
        (_on(1, _set(("pageInfo", "endCursor"), "")), 1, "gives no endCursor"),
        (_on(2, _set(("pageInfo", "hasNextPage"), None)), 2, "hasNextPage"),
        (_on(1, _set(("pageInfo", "hasNextPage"), _DROP)), 1, "hasNextPage of the connection"),
        (_on(1, _set(("pageInfo", "hasNextPage"), "yes")), 1, "not true or false"),
        (_on(3, _set(("pageInfo", "endCursor"), "10")), 3, "endCursor '10' twice"),
        (_on(2, lambda c: c["edges"].__setitem__(3, None)), 2, "None at edges[3]"),
        (_on(2, lambda c: c["edges"][3].__setitem__("node", None)), 2, "None at edges[3]"),
        (_on(1, lambda c: c.pop("edges")), 1, "neither `edges` nor `nodes`"),
    ],
    ids=[
        "null-cursor",
        "empty-cursor",
        "null-has-next",
        "missing-has-next",
        "text-has-next",
        "cursor-again",
        "null-edge",
        "null-node",
        "no-edges",
    ],
)
def test_a_read_it_cannot_be_sure_of_fails_with_the_reason(
    tmp_path: Path, fault: Fault, pages: int, says: str
) -> None:
    run, served = _run(tmp_path, Items(fault))
    assert served == pages, "the read stopped at the page that misbehaved"
    assert run["status"] == "failed", run
    assert says in (run["message"] or ""), run["message"]


def test_empty_pages_that_go_on_saying_more_stop_at_max_empty_pages(tmp_path: Path) -> None:
    def endless(at: int, connection: dict[str, Any]) -> dict[str, Any]:
        if at > 1:  # a fresh cursor every time, and never a record
            connection["edges"] = []
            connection["pageInfo"] = {"hasNextPage": True, "endCursor": f"x{at}"}
        return connection

    run, served = _run(tmp_path, Items(endless), max_empty_pages=5)
    assert served == 7, "the first page, then five empty ones, then the one too many"
    assert run["status"] == "failed" and "5 empty pages in a row" in run["message"]


def test_a_whole_read_still_succeeds(tmp_path: Path) -> None:
    run, served = _run(tmp_path, Items(lambda at, connection: connection))
    assert served == 5 and run["status"] == "succeeded" and run["created"] == 50
