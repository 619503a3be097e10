"""What reading a paginated API through interlink costs against a bare hand-written loop.

One sandbox shop (`interlink.sandbox.create_shop_app`, bearer token) served by uvicorn in a
child process, so client and server each get a core. For each list style of the shop

  offset    /customers             {"data": [...], "total"}
  page      /customers/pages       {"customers": [...], "total_pages"}
  cursor    /customers/cursor      {"data": [...], "next_cursor"}
  link      /customers/link        [...] + Link: <...>; rel="next"
  next-url  /customers/next-url    {"results": [...], "next"}

`--records` customers are read, `--page-size` per page, by

  (1) interlink: `Catalog(config).resource(...).pages()`, the config built in code as
      interlink.yaml would give it; offset and page with `concurrency: 1` and with
      `concurrency: 4` (pages fetched at once, the total being known), the other styles
      with the defaults;
  (2) the bare loop a user would write: `httpx.Client` (sync, keep-alive), `orjson.loads`,
      take the records, find the next page, repeat;
  (3) the same loop over `httpx.AsyncClient`, for reference.

The consumer only counts the records and checks that the ids run on without a gap, the
same for every contender; a read that does not return exactly `--records` records stops
the benchmark. Each contender runs `--rounds` times, interleaved; the median wall time
(client construction to close) counts. Targets (issue 3): interlink >= 1.0x the bare
sync loop for sequential reads, > 1.0x where pages are fetched concurrently.

    .venv/bin/python benchmarks/read.py [--rounds 3] [--records 100000] [--page-size 1000]
        [--styles offset,page,cursor,link,next-url]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import orjson

from _local_server import free_port, wait_for_port
from interlink.config import InterlinkConfig
from interlink.connectors import Catalog

TOKEN = "bench-token-0123456789"
SEED = 42
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def _serve(port: int, records: int) -> None:
    from interlink.sandbox import run_sandbox

    run_sandbox(port, records=records, seed=SEED, token=TOKEN)


class Tally:
    """The consumer: counts records and checks that customer ids run 1, 2, 3... unbroken."""

    __slots__ = ("count", "last_id")

    def __init__(self) -> None:
        self.count = 0
        self.last_id = 0

    def add(self, records: list[dict[str, Any]]) -> None:
        if records:
            assert records[0]["id"] == self.last_id + 1, (records[0]["id"], self.last_id)
            self.last_id = records[-1]["id"]
            self.count += len(records)


# -- the bare loops ----------------------------------------------------------------------------
#
# A request is (url, params); a style's step reads one response and returns its records and
# the next request, or None after the last page. The loops around it are the script a user
# would write with httpx; the step is the part that differs from API to API.

Request = tuple[str, dict[str, Any] | None]
Step = Callable[[Request, httpx.Response], tuple[list[dict[str, Any]], Request | None]]


def _offset_step(request: Request, response: httpx.Response) -> tuple[list[Any], Request | None]:
    body = orjson.loads(response.content)
    records = body["data"]
    url, params = request
    assert params is not None
    offset = params["offset"] + len(records)
    more = bool(records) and offset < body["total"]
    return records, ((url, {**params, "offset": offset}) if more else None)


def _page_step(request: Request, response: httpx.Response) -> tuple[list[Any], Request | None]:
    body = orjson.loads(response.content)
    records = body["customers"]
    url, params = request
    assert params is not None
    more = bool(records) and params["page"] < body["total_pages"]
    return records, ((url, {**params, "page": params["page"] + 1}) if more else None)


def _cursor_step(request: Request, response: httpx.Response) -> tuple[list[Any], Request | None]:
    body = orjson.loads(response.content)
    records, cursor = body["data"], body["next_cursor"]
    url, params = request
    return records, ((url, {**(params or {}), "cursor": cursor}) if cursor and records else None)


def _link_step(request: Request, response: httpx.Response) -> tuple[list[Any], Request | None]:
    records = orjson.loads(response.content)
    following = response.links.get("next")
    return records, ((following["url"], None) if following and records else None)


def _next_url_step(request: Request, response: httpx.Response) -> tuple[list[Any], Request | None]:
    body = orjson.loads(response.content)
    records, following = body["results"], body["next"]
    return records, ((following, None) if following and records else None)


@dataclass(frozen=True)
class Style:
    path: str
    first_params: Callable[[int], dict[str, Any]]
    step: Step
    resource: Callable[[int], dict[str, Any]]
    """The resource's interlink.yaml entry, given the page size."""
    concurrent: bool = False
    """Whether interlink can fetch pages at once (offset and page with a known total)."""


STYLES: dict[str, Style] = {
    "offset": Style(
        "/customers",
        lambda size: {"offset": 0, "limit": size},
        _offset_step,
        lambda size: {
            "path": "/customers",
            "records": "data",
            "paginate": {"type": "offset", "page_size": size, "total_path": "total"},
        },
        concurrent=True,
    ),
    "page": Style(
        "/customers/pages",
        lambda size: {"page": 1, "per_page": size},
        _page_step,
        lambda size: {
            "path": "/customers/pages",
            "records": "customers",
            "paginate": {"type": "page", "page_size": size, "total_pages_path": "total_pages"},
        },
        concurrent=True,
    ),
    "cursor": Style(
        "/customers/cursor",
        lambda size: {"limit": size},
        _cursor_step,
        lambda size: {
            "path": "/customers/cursor",
            "records": "data",
            "paginate": {"type": "cursor", "cursor_path": "next_cursor", "page_size": size},
        },
    ),
    "link": Style(
        "/customers/link",
        lambda size: {"per_page": size},
        _link_step,
        lambda size: {
            "path": "/customers/link",
            "paginate": {"type": "link_header", "page_size": size, "size_param": "per_page"},
        },
    ),
    "next-url": Style(
        "/customers/next-url",
        lambda size: {"limit": size},
        _next_url_step,
        lambda size: {
            "path": "/customers/next-url",
            "records": "results",
            "paginate": {"type": "next_url", "next_path": "next", "page_size": size},
        },
    ),
}


def bare_sync(base: str, style: Style, page_size: int) -> Tally:
    tally = Tally()
    request: Request | None = (style.path, style.first_params(page_size))
    with httpx.Client(base_url=base, headers=HEADERS) as client:
        while request is not None:
            response = client.get(request[0], params=request[1])
            response.raise_for_status()
            records, request = style.step(request, response)
            tally.add(records)
    return tally


async def _bare_async(base: str, style: Style, page_size: int) -> Tally:
    tally = Tally()
    request: Request | None = (style.path, style.first_params(page_size))
    async with httpx.AsyncClient(base_url=base, headers=HEADERS) as client:
        while request is not None:
            response = await client.get(request[0], params=request[1])
            response.raise_for_status()
            records, request = style.step(request, response)
            tally.add(records)
    return tally


def bare_async(base: str, style: Style, page_size: int) -> Tally:
    return asyncio.run(_bare_async(base, style, page_size))


# -- interlink -----------------------------------------------------------------------------------


def interlink_config(base: str, styles: list[str], page_size: int) -> InterlinkConfig:
    """What interlink.yaml would say: one connection, a resource per style (and concurrency)."""
    resources: dict[str, Any] = {}
    for name in styles:
        style = STYLES[name]
        entry = style.resource(page_size)
        key = name.replace("-", "_")
        if style.concurrent:
            resources[f"{key}_c1"] = {**entry, "concurrency": 1}
            resources[f"{key}_c4"] = {**entry, "concurrency": 4}
        else:
            resources[key] = entry  # the defaults
    return InterlinkConfig.model_validate(
        {
            "connections": {"shop": {"base_url": base, "auth": {"type": "bearer", "token": TOKEN}}},
            "resources": {"shop": resources},
        }
    )


async def _interlink(config: InterlinkConfig, resource: str) -> Tally:
    tally = Tally()
    async with Catalog(config) as catalog:
        async for page in catalog.resource(resource).pages():
            tally.add(page.records)
    return tally


def interlink_read(config: InterlinkConfig, resource: str) -> Tally:
    return asyncio.run(_interlink(config, resource))


# -- measuring -----------------------------------------------------------------------------------

BARE = "bare httpx.Client"


@dataclass(frozen=True)
class Contender:
    name: str
    read: Callable[[], Tally]
    target: str | None = None
    """'>=' (sequential: at least the bare loop) or '>' (concurrent: more than it)."""


def contenders(base: str, config: InterlinkConfig, name: str, page_size: int) -> list[Contender]:
    style = STYLES[name]
    key = f"shop.{name.replace('-', '_')}"
    found: list[Contender] = []
    if style.concurrent:
        found.append(
            Contender("interlink concurrency 1", lambda: interlink_read(config, f"{key}_c1"), ">=")
        )
        found.append(
            Contender("interlink concurrency 4", lambda: interlink_read(config, f"{key}_c4"), ">")
        )
    else:
        found.append(Contender("interlink (defaults)", lambda: interlink_read(config, key), ">="))
    found.append(Contender(BARE, lambda: bare_sync(base, style, page_size)))
    found.append(
        Contender("bare httpx.AsyncClient (ref)", lambda: bare_async(base, style, page_size))
    )
    return found


def _warm_up(base: str, styles: list[str]) -> None:
    with httpx.Client(base_url=base, headers=HEADERS) as client:
        for name in styles:
            style = STYLES[name]
            client.get(style.path, params=style.first_params(10)).raise_for_status()


Plan = dict[str, list[Contender]]
Walls = dict[str, dict[str, list[float]]]


def measure(base: str, args: argparse.Namespace) -> tuple[Plan, Walls]:
    config = interlink_config(base, args.styles, args.page_size)
    plan = {name: contenders(base, config, name, args.page_size) for name in args.styles}
    walls: Walls = {name: {c.name: [] for c in found} for name, found in plan.items()}
    _warm_up(base, args.styles)
    for round_number in range(args.rounds):
        for name, found in plan.items():
            # Rotate the order each round so no contender always follows the same one.
            shift = round_number % len(found)
            for contender in found[shift:] + found[:shift]:
                started = time.perf_counter()
                tally = contender.read()
                wall = time.perf_counter() - started
                assert tally.count == args.records, (name, contender.name, tally.count)
                assert tally.last_id == args.records, (name, contender.name, tally.last_id)
                walls[name][contender.name].append(wall)
    return plan, walls


def report(plan: Plan, walls: Walls, args: argparse.Namespace) -> list[str]:
    print(
        f"# read: {platform.machine()}, {multiprocessing.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, httpx {httpx.__version__}, "
        f"aiohttp {aiohttp.__version__}, orjson {orjson.__version__}; "
        f"{args.records:,} records, {args.page_size:,} per page; median of {args.rounds} rounds"
    )
    print(
        f"{'style':9} {'contender':29} {'records/s':>10} {'wall s':>7} {'x bare':>7}   "
        f"{'wall min-max':13}  target"
    )
    missed: list[str] = []
    for name, found in plan.items():
        by_contender = walls[name]
        bare = statistics.median(by_contender[BARE])
        for contender in found:
            runs = by_contender[contender.name]
            wall = statistics.median(runs)
            ratio = bare / wall
            verdict = ""
            if contender.target == ">=":
                ok = ratio >= 1.0
                verdict = f">= 1.0x {'ok' if ok else 'BELOW TARGET'}"
            elif contender.target == ">":
                ok = ratio > 1.0
                verdict = f"> 1.0x  {'ok' if ok else 'BELOW TARGET'}"
            else:
                ok = True
            if not ok:
                missed.append(f"{name} / {contender.name}")
            line = (
                f"{name:9} {contender.name:29} {args.records / wall:10,.0f} {wall:7.3f} "
                f"{ratio:6.2f}x   {min(runs):.3f}-{max(runs):.3f}    {verdict}"
            )
            print(line.rstrip())
    print("all targets met" if not missed else f"below target: {', '.join(missed)}")
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--styles",
        type=lambda text: [s.strip() for s in text.split(",") if s.strip()],
        default=list(STYLES),
        help=f"comma-separated, of: {','.join(STYLES)}",
    )
    args = parser.parse_args()
    unknown = [name for name in args.styles if name not in STYLES]
    if unknown:
        parser.error(f"unknown styles {unknown}; known: {', '.join(STYLES)}")
    if not 1 <= args.page_size <= 1000:
        parser.error("the shop caps pages at 1000 records; --page-size must be 1..1000")

    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, args.records), daemon=True
    )
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port)
        plan, walls = measure(base, args)
    finally:
        server.terminate()
        server.join(5)
    report(plan, walls, args)


if __name__ == "__main__":
    main()
