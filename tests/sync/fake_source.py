"""A small source API for sync tests, whose records a test changes directly.

`GET /items?offset=&limit=[&updated_since=][&include_deleted=1]` ->
`{"data": [...], "total": N}`, sorted by id; `GET /items/{id}` -> the record, or 404
(counted in `item_requests`). Records deleted with `delete()` disappear;
with `include_deleted=1` they come back as tombstones `{"id", "deleted": true,
"updated_at"}` (an API that reports deletions). `delay` slows every page; `lie_total`
adds to the announced total (an API whose count and pages disagree).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(n: int) -> str:
    return (BASE + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")


class FakeSource:
    """The records and knobs behind the app; tests change them between runs."""

    def __init__(self, count: int) -> None:
        self.clock = count
        self.records: dict[int, dict[str, Any]] = {
            n: {"id": n, "name": f"item {n}", "score": n % 7, "updated_at": stamp(n)}
            for n in range(1, count + 1)
        }
        self.tombstones: dict[int, str] = {}
        self.delay = 0.0
        self.lie_total = 0
        self.requests = 0
        self.item_requests = 0

    def touch(self, *ids: int, **changes: Any) -> None:
        for n in ids:
            self.clock += 1
            self.records[n] = {**self.records[n], **changes, "updated_at": stamp(self.clock)}

    def delete(self, *ids: int) -> None:
        for n in ids:
            self.clock += 1
            del self.records[n]
            self.tombstones[n] = stamp(self.clock)

    def listing(self, since: str | None, include_deleted: bool) -> list[dict[str, Any]]:
        rows = list(self.records.values())
        if include_deleted:
            rows += [
                {"id": n, "deleted": True, "updated_at": at} for n, at in self.tombstones.items()
            ]
        if since is not None:
            rows = [r for r in rows if r["updated_at"] >= since]
        return sorted(rows, key=lambda r: r["id"])

    def app(self) -> Starlette:
        async def items(request: Request) -> JSONResponse:
            self.requests += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", 100))
            rows = self.listing(
                request.query_params.get("updated_since"),
                request.query_params.get("include_deleted") == "1",
            )
            page = rows[offset : offset + limit]
            return JSONResponse({"data": page, "total": len(rows) + self.lie_total})

        async def item(request: Request) -> JSONResponse:
            self.item_requests += 1
            record = self.records.get(int(request.path_params["item_id"]))
            if record is None:
                return JSONResponse({"error": "not found"}, status_code=404)
            return JSONResponse(record)

        return Starlette(routes=[Route("/items", items), Route("/items/{item_id:int}", item)])


def config(
    url: str,
    database: str,
    pipelines: dict[str, Any],
    *,
    resource: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An interlink config (as a dict) reading `items` from the fake source."""
    items = {
        "path": "/items",
        "records": "data",
        "paginate": {"type": "offset", "page_size": 100},
        "incremental": {"field": "updated_at", "param": "updated_since"},
        **(resource or {}),
    }
    return {
        "database": database,
        "connections": {"src": {"base_url": url}},
        "resources": {"src": {"items": items}},
        "pipelines": pipelines,
    }


FAILING: set[int] = set()
"""The ids `name_unless_failing` refuses: a test adds and removes them between runs."""


def name_unless_failing(record: dict[str, Any]) -> str:
    """A mapping callable that fails for the records in `FAILING` (a cause a user fixes)."""
    if record["id"] in FAILING:
        raise ValueError(f"record {record['id']} cannot be mapped")
    return str(record["name"])


def name_unless_listed(record: dict[str, Any]) -> str:
    """`name_unless_failing` for a run in another process: it fails the ids listed in
    $INTERLINK_TEST_FAILING (comma-separated)."""
    import os

    listed = {int(n) for n in os.environ.get("INTERLINK_TEST_FAILING", "").split(",") if n}
    if record["id"] in listed:
        raise ValueError(f"record {record['id']} cannot be mapped")
    return str(record["name"])


def score_unless_failing(record: dict[str, Any]) -> Any:
    """A mapping callable giving a value SQLite cannot store (NaN) for the ids in
    `FAILING`: a record the table writer refuses."""
    return float("nan") if record["id"] in FAILING else record["score"]


REFUSED: set[int] = set()
"""The ids `score_unless_refused` gives a value the table refuses."""


def score_unless_refused(record: dict[str, Any]) -> Any:
    """`score_unless_failing` for the ids in `REFUSED`."""
    return float("nan") if record["id"] in REFUSED else record["score"]


def prefixed_id(record: dict[str, Any]) -> str:
    """A destination key that is not the source's: `item-<id>`."""
    return f"item-{record['id']}"


def email_unless_failing(record: dict[str, Any]) -> str:
    """A mapping callable whose email an API refuses (422) for the records in `FAILING`."""
    return "not-an-email" if record["id"] in FAILING else str(record["email"])


def name_unless_13(record: dict[str, Any]) -> str:
    """A mapping callable that fails for record 13 (a record that cannot be written)."""
    if record["id"] == 13:
        raise ValueError("record 13 cannot be mapped")
    return str(record["name"])


_PROJECT = """
database: sqlite:///{db}
connections:
  src:
    base_url: {url}
resources:
  src:
    items:
      path: /items
      records: data
      paginate: {{type: offset, page_size: {page_size}}}
      incremental: {{field: updated_at, param: updated_since}}
pipelines:
  items:
    source: src.items
    destination: sql:items
    fields:
      id: id
      name: {{call: "tests.sync.fake_source:{name_call}"}}
"""


def project_yaml(db: Any, url: str, *, page_size: int, name_call: str) -> str:
    """An interlink.yaml (for the command line) whose pipeline `items` copies the fake
    source's items into table `items`, their name through mapping callable `name_call`
    of this module (`name_unless_failing`, `name_unless_listed`)."""
    return _PROJECT.format(db=db, url=url, page_size=page_size, name_call=name_call)
