"""Differential property test of issue 10: generated APIs read by every paginator into
SQLite and PostgreSQL in append, merge and replace. The destination equals the source,
or the run fails loudly (an InterlinkError); never a silent difference.

The generated API caps page sizes, slips empty pages with a next cursor into cursor
scans, mixes timestamp formats (fractions, offsets), may ignore its paging parameters,
and has records edited while a read goes on and deleted between runs.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import InterlinkError
from interlink.sandbox import SandboxServer
from interlink.store import Store
from interlink.sync import run_pipeline

STYLES = ["offset", "page", "cursor", "next_url", "link_header"]


def timestamp(n: int, style: int) -> str:
    """Record n's updated_at in one of several ISO-8601 spellings of increasing instants."""
    seconds, fraction = divmod(n * 250, 1000)
    minutes, second = divmod(seconds, 60)
    if style == 0:
        return f"2026-03-01T10:{minutes:02d}:{second:02d}Z"
    if style == 1:
        return f"2026-03-01T10:{minutes:02d}:{second:02d}.{fraction:03d}Z"
    # The same instant two hours ahead, with its offset.
    return f"2026-03-01T12:{minutes:02d}:{second:02d}.{fraction:03d}000+02:00"


@dataclass
class Scenario:
    """What the generated API does; the app reads the current one."""

    style: str = "offset"
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    cap: int | None = None
    ignore_params: bool = False
    empty_every: int = 0
    edit_during_read: list[int] = field(default_factory=list)
    versions: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: int = 0

    def rows(self) -> list[dict[str, Any]]:
        return [self.records[k] for k in sorted(self.records)]

    def edit_next(self) -> None:
        if self.edit_during_read:
            key = self.edit_during_read.pop()
            if key in self.records:
                changed = {**self.records[key], "name": f"edited {key}"}
                self.records[key] = changed
                self.versions.setdefault(key, []).append(changed)


SCENARIO = Scenario()


def _size(request: Request, name: str, default: int) -> int:
    asked = int(request.query_params.get(name, default))
    return min(asked, SCENARIO.cap) if SCENARIO.cap else asked


async def items(request: Request) -> JSONResponse:
    s = SCENARIO
    s.requests += 1
    if s.requests > 2_000:  # a read that never stops: answer an error, the run fails
        return JSONResponse({"error": "too many requests"}, status_code=400)
    if s.requests > 1:
        s.edit_next()
    rows = s.rows()
    query = request.query_params
    base = str(request.url.remove_query_params(list(query.keys())))
    if s.style == "offset":
        limit = _size(request, "limit", 100)
        offset = 0 if s.ignore_params else int(query.get("offset", 0))
        return JSONResponse({"data": rows[offset : offset + limit], "total": len(rows)})
    if s.style == "page":
        size = _size(request, "per_page", 100)
        page = 1 if s.ignore_params else int(query.get("page", 1))
        start = (page - 1) * size
        return JSONResponse(
            {
                "data": rows[start : start + size],
                "total": len(rows),
                "total_pages": math.ceil(len(rows) / size) if rows else 0,
            }
        )
    if s.style in ("cursor", "next_url"):
        size = _size(request, "limit", 100)
        raw = query.get("cursor", "0")
        empty = raw.startswith("e")
        after = int(raw.lstrip("e"))
        later = [r for r in rows if r["id"] > after]
        if s.empty_every and not empty and later and after and (after // size) % s.empty_every == 0:
            # A filtered scan: nothing on this page, but the scan goes on.
            page: list[dict[str, Any]] = []
            token: str | None = f"e{after}"
        else:
            page = later[:size]
            token = str(page[-1]["id"]) if len(later) > size else None
        if s.style == "cursor":
            return JSONResponse({"data": page, "next_cursor": token})
        following = f"{base}?cursor={token}&limit={size}" if token else None
        return JSONResponse({"results": page, "next": following})
    size = _size(request, "per_page", 100)
    page_number = int(query.get("page", 1))
    start = (page_number - 1) * size
    links = []
    if start + size < len(rows):
        links.append(f'<{base}?page={page_number + 1}&per_page={size}>; rel="next"')
    headers = {"X-Total-Count": str(len(rows))}
    if links:
        headers["Link"] = ", ".join(links)
    return JSONResponse(rows[start : start + size], headers=headers)


PAGINATE = {
    "offset": ({"type": "offset", "page_size": 25}, "data"),
    "page": ({"type": "page", "page_size": 25, "total_path": "total"}, "data"),
    "cursor": ({"type": "cursor", "page_size": 25, "cursor_path": "next_cursor"}, "data"),
    "next_url": ({"type": "next_url", "page_size": 25, "next_path": "next"}, "results"),
    "link_header": ({"type": "link_header", "page_size": 25}, None),
}


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with SandboxServer(Starlette(routes=[Route("/items", items)])) as server:
        yield server.url


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    style = draw(st.sampled_from(STYLES))
    count = draw(st.integers(0, 160))
    fmt = draw(st.integers(0, 2))
    records = {
        n: {"id": n, "name": f"item {n}", "updated_at": timestamp(n, (n + fmt) % 3)}
        for n in range(1, count + 1)
    }
    scenario = Scenario(style=style, records=records)
    scenario.versions = {n: [dict(r)] for n, r in records.items()}
    scenario.cap = draw(st.sampled_from([None, None, 10, 20]))
    if style in ("offset", "page"):
        scenario.ignore_params = draw(st.booleans()) and draw(st.booleans())
    if style in ("cursor", "next_url"):
        scenario.empty_every = draw(st.sampled_from([0, 2, 3]))
    if records:
        scenario.edit_during_read = draw(
            st.lists(st.sampled_from(sorted(records)), max_size=5, unique=True)
        )
    return scenario


def _config(url: str, database: str, style: str, mode: str, table: str) -> InterlinkConfig:
    paginate, records = PAGINATE[style]
    resource: dict[str, Any] = {"path": "/items", "paginate": paginate, "concurrency": 2}
    if records:
        resource["records"] = records
    pipeline: dict[str, Any] = {
        "source": "api.items",
        "destination": {"sql": table},
        "write": mode,
        "incremental": False,
    }
    if mode == "merge":
        pipeline["deletes"] = "hard"
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {"api": {"base_url": url, "retry": {"max_attempts": 1}}},
            "resources": {"api": {"items": resource}},
            "pipelines": {"p": pipeline},
        }
    )


def _run(config: InterlinkConfig, store: Store) -> bool:
    """True when the run succeeded; False when it failed loudly (an InterlinkError)."""

    async def go() -> bool:
        async with Catalog(config) as catalog:
            result = await run_pipeline(config, "p", store=store, catalog=catalog)
        return result.ok

    try:
        return asyncio.run(go())
    except InterlinkError:
        return False


def _table(store: Store, table: str) -> list[dict[str, Any]]:
    if not sa.inspect(store.engine).has_table(table):
        return []
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT id, name, updated_at FROM {table} ORDER BY id")
        return [dict(r._mapping) for r in rows]


def _check(scenario: Scenario, store: Store, table: str, mode: str) -> None:
    """The destination equals the source: every key once, each row a version the source
    really had (a record edited during the read may be written as it was when read)."""
    rows = _table(store, table)
    keys = [r["id"] for r in rows]
    assert len(keys) == len(set(keys)), f"{mode}: rows written twice: {keys}"
    assert keys == sorted(scenario.records), f"{mode}: keys differ from the source's"
    for row in rows:
        assert row in scenario.versions[row["id"]], f"{mode}: {row} was never in the source"


def _property(api: str, database: str, scenario: Scenario, mode: str) -> None:
    global SCENARIO
    SCENARIO = scenario
    table = f"diff_{mode}"
    config = _config(api, database, scenario.style, mode, table)
    store = Store.open(config.database)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            conn.exec_driver_sql("DELETE FROM interlink_state WHERE pipeline = 'p'")
            conn.exec_driver_sql("DELETE FROM interlink_locks WHERE pipeline = 'p'")
        if not _run(config, store):
            return  # failed loudly: allowed
        _check(scenario, store, table, mode)
        if mode == "append":
            return
        # Deletions between runs: a complete second read removes them.
        for key in sorted(scenario.records)[::4]:
            del scenario.records[key]
        scenario.edit_during_read = []
        scenario.requests = 0
        if _run(config, store):
            _check(scenario, store, table, mode)
    finally:
        store.close()


_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("mode", ["append", "merge", "replace"])
@_SETTINGS
@given(scenario=scenarios())
def test_every_paginator_into_sqlite(api, tmp_path_factory, mode, scenario):
    database = f"sqlite:///{tmp_path_factory.mktemp('diff') / 'd.db'}"
    _property(api, database, scenario, mode)


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["append", "merge", "replace"])
@settings(_SETTINGS, max_examples=15)
@given(scenario=scenarios())
def test_every_paginator_into_postgresql(api, postgres_url, mode, scenario):
    _property(api, postgres_url, scenario, mode)
