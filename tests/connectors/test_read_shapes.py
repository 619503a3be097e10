"""Shapes of a page that ended REST reads "succeeded" with records missing (a helper's hunt;
two of them also emptied the table of a `deletes: hard` pipeline): each now stops the read
with the reason, and the well-formed shape beside it still reads whole.

- an error reply with HTTP 200 and no records: `{"code": 500, "msg": ..., "data": null}`,
  `{"error": {...}, "data": []}`, `{"errors": [...], "data": []}`;
- `cursor_field` (Stripe's `starting_after`) with a page whose last record lacks the field;
- a next link given as a link object (`{"href": ...}`, JSON:API 1.1) or as anything else;
- an object where a page's list belongs, on a read of pages.

A small API on 127.0.0.1 serves 50 items, 10 a page, and misbehaves on page 3.
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

Shape = Callable[[int, list[dict[str, Any]], str | None], dict[str, Any]]


def _serve(shape: Shape, served: list[int]) -> Starlette:
    async def items(request: Request) -> JSONResponse:
        page = int(request.query_params.get("page", "1"))
        after = request.query_params.get("starting_after")
        start = int(after) if after else (page - 1) * 10
        ids = list(range(start + 1, min(start + 10, 50) + 1))
        served.append(page if after is None else start // 10 + 1)
        number = served[-1]
        following = f"/items?page={number + 1}" if ids and ids[-1] < 50 else None
        return JSONResponse(shape(number, [{"id": i} for i in ids], following))

    return Starlette(routes=[Route("/items", items)])


def _run(tmp_path: Path, shape: Shape, paginate: dict[str, Any], **resource: Any) -> Any:
    served: list[int] = []
    tmp_path.mkdir(parents=True, exist_ok=True)
    with SandboxServer(_serve(shape, served)) as server:
        config = InterlinkConfig.model_validate(
            {
                "database": f"sqlite:///{tmp_path / 'shapes.db'}",
                "connections": {"api": {"base_url": server.url, "retry": {"max_attempts": 1}}},
                "resources": {
                    "api": {"items": {"path": "/items", "paginate": paginate, **resource}}
                },
                "pipelines": {"items": {"source": "api.items", "destination": "sql:items"}},
            }
        )
        found = recorded_run(config)
    return found


def _on_page_3(bad: dict[str, Any]) -> Shape:
    def shape(page: int, items: list[dict[str, Any]], following: str | None) -> dict[str, Any]:
        return bad if page == 3 else {"data": items, "next": following}

    return shape


NEXT = {"type": "next_url", "next_path": "next"}


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"code": 500, "msg": "system busy", "data": None}, "system busy (code 500)"),
        ({"error": {"code": 503, "message": "try later"}, "data": []}, "reported an error"),
        ({"errors": [{"message": "quota"}], "data": []}, "reported an error"),
        ({"status": 502, "data": []}, "reported an error"),
    ],
    ids=["code-500-null", "error-object", "errors-list", "status-502"],
)
def test_an_error_reply_with_200_stops_the_read(tmp_path: Path, bad: dict, says: str) -> None:
    run = _run(tmp_path, _on_page_3(bad), NEXT, records="data")
    assert run["status"] == "failed" and run["read"] == 20, run
    assert says in run["message"], run["message"]


def test_an_envelope_that_reports_no_error_reads_whole(tmp_path: Path) -> None:
    def shape(page: int, items: list[dict[str, Any]], following: str | None) -> dict[str, Any]:
        return {"code": 0, "status": 200, "error": None, "errors": [], "data": items,
                "next": following}  # fmt: skip

    run = _run(tmp_path, shape, NEXT, records="data")
    assert (run["status"], run["created"]) == ("succeeded", 50), run


def test_a_last_record_without_the_cursor_field_stops_the_read(tmp_path: Path) -> None:
    def shape(page: int, items: list[dict[str, Any]], following: str | None) -> dict[str, Any]:
        if page == 2:
            items[-1] = {"name": "no id"}
        return {"data": items}

    paginate = {"type": "cursor", "cursor_field": "id", "cursor_param": "starting_after"}
    run = _run(tmp_path, shape, paginate, records="data", primary_key="name")
    assert run["status"] == "failed" and "last record has no `id`" in run["message"], run
    whole = _run(tmp_path / "whole", lambda p, items, f: {"data": items}, paginate, records="data")
    assert (whole["status"], whole["created"]) == ("succeeded", 50), whole


def test_a_next_link_object_is_followed_and_anything_else_stops(tmp_path: Path) -> None:
    def linked(page: int, items: list[dict[str, Any]], following: str | None) -> dict[str, Any]:
        return {"data": items, "links": {"next": {"href": following} if following else None}}

    paginate = {"type": "next_url", "next_path": "links.next"}
    run = _run(tmp_path, linked, paginate, records="data")
    assert (run["status"], run["created"]) == ("succeeded", 50), run

    def numbered(page: int, items: list[dict[str, Any]], following: str | None) -> dict[str, Any]:
        return {"data": items, "next": page + 1 if following else None}

    odd = _run(tmp_path / "odd", numbered, NEXT, records="data")
    assert odd["status"] == "failed" and "neither a URL nor null" in odd["message"], odd


def test_a_wrapper_where_a_page_list_belongs_stops_the_read(tmp_path: Path) -> None:
    bad = {"data": {"items": [{"id": 21}, {"id": 22}]}}
    paginate = {"type": "page", "page_size": 10, "size_param": "per_page"}
    run = _run(tmp_path, _on_page_3(bad), paginate, records="data")
    assert run["status"] == "failed" and "an object holding a list (items)" in run["message"]
    # A plain object is one record (a list of one, as an API converted from XML sends it):
    # a page that sent one where it had ten is then found by the total.

    def one_last(page: int, items: list[dict[str, Any]], following: str | None) -> dict:
        return {"data": items[0] if page == 5 else items, "n": 50}

    paginate = {"type": "page", "page_size": 10, "size_param": "per_page", "total_path": "n"}
    whole = _run(tmp_path / "one", one_last, paginate, records="data")
    assert whole["status"] == "failed" and "41 records arrived" in whole["message"], whole


def test_error_fields_beside_records_and_empty_markers_are_no_failure(tmp_path: Path) -> None:
    """What an envelope says beside records is the API's own (partial-result notes, an
    error object it always sends); `next: false` or `[]` ends a read as null does."""

    def shape(page: int, items: list[dict[str, Any]], following: str | None) -> dict:
        notes = {"error": {"code": 0, "message": ""}, "errors": [{"message": "row 3 skipped"}]}
        last = not following
        return {
            **({"error": "OK"} if last else notes),
            "data": [] if page == 6 else items,
            "next": following or ([] if page % 2 else False),
        }

    run = _run(tmp_path, shape, NEXT, records="data")
    assert (run["status"], run["created"]) == ("succeeded", 50), run
