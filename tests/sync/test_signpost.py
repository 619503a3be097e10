"""Records changed while a read goes on: the cursor never passes the read's start.

RELIABILITY.md, sync rule 3 (Singer's "signpost"). A record changed after its page was
read gets a new `updated_at`, later than the read's start. If another record changed
later still, on a page read after it, the read's highest value passes the first one's,
and an incremental cursor taken at that highest value left the first change behind for
good: the next run asked for what changed since, and succeeded without it. The source
here is a real server on 127.0.0.1 whose records carry real times, changed between the
read's page requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import InterlinkError
from interlink.sandbox import SandboxServer
from interlink.store import Store
from interlink.sync import RunResult, run_pipeline

COUNT = 300
PAGE = 100


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class LiveSource:
    """`GET /items?offset=&limit=&updated_since=`, sorted by id, `{"data", "total"}`.

    Records were last changed a day ago; `during[n]` runs when page n is asked for (a
    change made while the read goes on), `fail_at` answers one page with a 500."""

    def __init__(self) -> None:
        day_ago = datetime.now(UTC) - timedelta(days=1)
        self.records = {
            n: {
                "id": n,
                "name": f"item {n}",
                "updated_at": (day_ago + timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
            }
            for n in range(1, COUNT + 1)
        }
        self.during: dict[int, Callable[[], None]] = {}
        self.fail_at: int | None = None
        self.lie_total = 0
        self.served = 0

    def touch(self, n: int) -> None:
        self.records[n] = {**self.records[n], "name": f"edited {n}", "updated_at": _now()}

    def app(self) -> Starlette:
        async def items(request: Request) -> JSONResponse:
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", PAGE))
            number = offset // limit + 1
            if self.fail_at == number:
                self.fail_at = None
                return JSONResponse({"error": "down"}, status_code=500)
            change = self.during.pop(number, None)
            if change is not None:
                change()
            since = request.query_params.get("updated_since")
            rows = sorted(self.records.values(), key=lambda r: r["id"])
            if since is not None:
                rows = [r for r in rows if _at(r["updated_at"]) >= _at(since)]
            self.served += len(rows[offset : offset + limit])
            total = len(rows) + self.lie_total
            return JSONResponse({"data": rows[offset : offset + limit], "total": total})

        return Starlette(routes=[Route("/items", items)])


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def source() -> Iterator[tuple[LiveSource, str]]:
    live = LiveSource()
    with SandboxServer(live.app()) as server:
        yield live, server.url


def _config(
    url: str,
    database: str,
    write: str,
    page: int = PAGE,
    field: str = "updated_at",
    pipeline: dict[str, Any] | None = None,
    **incremental: Any,
) -> InterlinkConfig:
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {"src": {"base_url": url, "retry": {"max_attempts": 1}}},
            "resources": {
                "src": {
                    "items": {
                        "path": "/items",
                        "records": "data",
                        # LiveSource numbers its pages by offset: none asked back.
                        "paginate": {"type": "offset", "page_size": page, "overlap": 0},
                        "incremental": {
                            "field": field,
                            "param": "updated_since",
                            **incremental,
                        },
                    }
                }
            },
            "pipelines": {
                "p": {
                    "source": "src.items",
                    "destination": "sql:items",
                    "write": write,
                    "on_source_change": "full_refresh",
                    **(pipeline or {}),
                }
            },
        }
    )


def _run(cfg: InterlinkConfig, store: Store, **kwargs: Any) -> RunResult:
    async def go() -> RunResult:
        async with Catalog(cfg) as catalog:
            return await run_pipeline(cfg, "p", store=store, catalog=catalog, **kwargs)

    return asyncio.run(go())


def _rows(store: Store) -> list[tuple[int, str]]:
    with store.engine.connect() as conn:
        return [
            (int(r[0]), str(r[1]))
            for r in conn.exec_driver_sql("SELECT id, name FROM items ORDER BY id, name")
        ]


def _changed_during_the_read(live: LiveSource) -> None:
    # Record 5 (page 1, already read) changes while page 2 is asked for; record 250
    # (page 3, not read yet) changes later, as page 3 is asked for: its new time is the
    # read's highest.
    live.during = {2: lambda: live.touch(5), 3: lambda: live.touch(250)}


def _fresh(database: str) -> Store:
    store = Store.open(database)
    with store.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS items")
        for table in ("interlink_state", "interlink_locks"):
            conn.exec_driver_sql(f"DELETE FROM {table} WHERE pipeline = 'p'")
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.parametrize("write", ["merge", "append"])
def test_a_change_made_behind_the_read_comes_with_the_next_run(source, database, write):
    live, url = source
    store = _fresh(database)
    try:
        cfg = _config(url, database, write)
        _changed_during_the_read(live)
        first = _run(cfg, store)
        assert first.ok and first.counts["read"] == COUNT
        assert (5, "item 5") in _rows(store) and (250, "edited 250") in _rows(store)
        live.served = 0
        second = _run(cfg, store)
        assert second.ok
        rows = _rows(store)
        if write == "merge":
            assert (5, "edited 5") in rows and (5, "item 5") not in rows
        else:
            # Both versions of record 5; record 250, read again unchanged, not twice.
            assert [r for r in rows if r[0] == 5] == [(5, "edited 5"), (5, "item 5")]
            assert [r for r in rows if r[0] == 250] == [(250, "edited 250")]
            assert len(rows) == COUNT + 1
            # 250 and the record at the cursor, found in the table: unchanged, counted so.
            assert (second.counts["created"], second.counts["unchanged"]) == (1, 2)
        # The next run reads what changed since the read began, not everything.
        assert live.served <= 3, live.served
        live.served = 0
        third = _run(cfg, store)
        assert third.ok and live.served <= 3
        assert _rows(store) == rows
    finally:
        store.close()


def test_a_resumed_read_keeps_the_signpost_of_the_read_it_resumes(source, database):
    """Record 5 changes during the first attempt, after its page was read; the read stops
    at page 3. Record 250 (page 3) changes before the read resumes, later than record 5.
    Had the resumed read set its signpost anew, record 250's time would have moved the
    cursor past record 5's change."""
    live, url = source
    store = _fresh(database)
    try:
        cfg = _config(url, database, "append")
        live.during = {2: lambda: live.touch(5)}
        live.fail_at = 3
        with pytest.raises(InterlinkError):
            _run(cfg, store)
        assert store.load_state("p").interrupted
        live.touch(250)
        resumed = _run(cfg, store)
        assert resumed.ok and resumed.resumed
        assert (5, "item 5") in _rows(store)
        nxt = _run(cfg, store)
        assert nxt.ok
        rows = _rows(store)
        assert [r for r in rows if r[0] == 5] == [(5, "edited 5"), (5, "item 5")]
        # Read again past the signpost, record 250 was appended once, as read first.
        assert [r for r in rows if r[0] == 250] == [(250, "edited 250")]
        assert len(rows) == COUNT + 1
    finally:
        store.close()


def test_lag_starts_the_next_read_earlier_still(source, tmp_path):
    """`incremental.lag`: the signpost moves back by it, for records whose change shows
    later than their time says (a long transaction, a replica behind): with a lag of two
    days, the next read reads everything changed in those two days again."""
    live, url = source
    database = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(database)
    try:
        cfg = _config(url, database, "merge", lag="2d")
        assert _run(cfg, store).ok
        live.served = 0
        again = _run(cfg, store)
        assert again.ok and live.served == COUNT  # a day-old source, within the lag
        assert again.counts["unchanged"] == COUNT
    finally:
        store.close()


def test_an_append_read_resumed_still_knows_what_the_read_before_it_saw(source, database):
    """The window of records the read before may have appended (from the cursor to the
    highest value it saw) goes with the checkpoint: a resumed read appends none again."""
    live, url = source
    store = _fresh(database)
    try:
        # A record a page: 5 is read at page 5 and changes at page 10; 250 changes at
        # page 100 and is read, changed, at page 250.
        live.during = {10: lambda: live.touch(5), 100: lambda: live.touch(250)}
        small = _config(url, database, "append", page=1)
        assert _run(small, store).ok
        # The next read brings 5, 250 and the one at the cursor; it stops after the first
        # page and resumes.
        live.fail_at = 2
        with pytest.raises(InterlinkError):
            _run(small, store)
        resumed = _run(small, store)
        assert resumed.ok and resumed.resumed
        rows = _rows(store)
        assert [r for r in rows if r[0] == 250] == [(250, "edited 250")]
        assert [r for r in rows if r[0] == 5] == [(5, "edited 5"), (5, "item 5")]
        assert len(rows) == COUNT + 1
    finally:
        store.close()


def test_an_append_read_that_moved_no_cursor_appends_nothing_twice(source, database):
    """Review finding: with every value past the signpost (a young source, or a lag
    longer than its age) no cursor is stored, so the next run reads the whole source
    again; what the run before appended is in its window and is not appended twice."""
    live, url = source
    store = _fresh(database)
    try:
        cfg = _config(url, database, "append", lag="2d")
        for _ in range(3):
            assert _run(cfg, store).ok
            assert store.load_state("p").cursor is None
        assert len(_rows(store)) == COUNT
        live.touch(7)
        assert _run(cfg, store).ok
        assert [r for r in _rows(store) if r[0] == 7] == [(7, "edited 7"), (7, "item 7")]
    finally:
        store.close()


def test_the_incremental_field_changing_kind_runs_whole_then_on(source, database):
    """Review finding: the window of a read by a number field beside a read by a time
    failed every run after the switch, `--full-refresh` or not."""
    live, url = source
    store = _fresh(database)
    try:
        assert _run(_config(url, database, "merge", field="id"), store).ok
        by_time = _config(url, database, "merge")
        switched = _run(by_time, store)
        assert switched.ok and switched.counts["read"] == COUNT
        live.touch(9)
        assert _run(by_time, store).ok
        assert (9, "edited 9") in _rows(store)
    finally:
        store.close()


@pytest.mark.parametrize("full_refresh", [False, True], ids=["incremental", "full refresh"])
def test_an_abandoned_read_keeps_the_window_of_the_read_before(source, database, full_refresh):
    """Review findings: a read abandoned as short (its total never met) dropped what the
    last complete read saw, and the next append read appended its re-read records again;
    the second review found the same for a full refresh (a staged read)."""
    live, url = source
    store = _fresh(database)
    try:
        cfg = _config(url, database, "append")
        _changed_during_the_read(live)
        assert _run(cfg, store).ok
        live.lie_total = 5
        with pytest.raises(InterlinkError):
            _run(cfg, store, full_refresh=full_refresh)
        live.lie_total = 0
        assert _run(cfg, store).ok
        rows = _rows(store)
        assert [r for r in rows if r[0] == 250] == [(250, "edited 250")]
        if not full_refresh:
            assert len(rows) == COUNT + 1
    finally:
        store.close()


def test_a_whole_read_of_an_append_pipeline_that_is_not_incremental_appends_all(source, database):
    """Second review finding: the window opened for every whole read, so a pipeline with
    `incremental: false` appending the whole source each run appended nothing the
    second time. Such a run appends every record again, as before the signpost."""
    live, url = source
    store = _fresh(database)
    try:
        cfg = _config(url, database, "append", pipeline={"incremental": False}, lag="2d")
        assert _run(cfg, store).ok and _run(cfg, store).ok
        assert len(_rows(store)) == 2 * COUNT
    finally:
        store.close()


def test_adding_a_filter_keeps_the_window(source, database):
    """Second review finding: a filter added after a read (accepted: it skips nothing)
    changed the fingerprint, which dropped the window, and record 250 came twice."""
    live, url = source
    store = _fresh(database)
    try:
        _changed_during_the_read(live)
        assert _run(_config(url, database, "append"), store).ok
        kept = _config(url, database, "append", pipeline={"filter": "id > 0"})
        assert _run(kept, store).ok
        assert [r for r in _rows(store) if r[0] == 250] == [(250, "edited 250")]
    finally:
        store.close()
