"""What interlink's HTTP layer costs against bare httpx and raw aiohttp, in one run.

One local server (aiohttp.web in a child process, precomputed bodies, so the server costs
every client the same) and three clients:

  (a) "small": 2,000 GETs of a one-record page, 16 concurrent
  (b) "pages": 100 sequential GETs of a 1,000-record page (~350 kB), parsed with orjson

through ApiClient (bearer auth, retry and rate-limit layers on, limits not reached), a bare
`httpx.AsyncClient`, `httpx.AsyncClient` over httpx-aiohttp's transport (for reference) and a
raw `aiohttp.ClientSession`. Each contender runs `--rounds` times, interleaved; the median
counts. Targets (issue 2): (a) ApiClient >= 3x bare httpx and >= 0.35x aiohttp; (b) ApiClient
>= 0.9x aiohttp.

    .venv/bin/python benchmarks/http_overhead.py [--rounds 5] [--small 2000] [--pages 100]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import orjson
from aiohttp import web

from _local_server import free_port, wait_for_port
from interlink.http import ApiClient, BearerAuth, RateLimiter, RetryPolicy, TokenBucket

TOKEN = "bench-token-0123456789"


def _record(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "email": f"customer{i}@example.com",
        "first_name": "Ada",
        "last_name": f"Lovelace{i}",
        "company": "Analytical Engines Ltd",
        "address": {"street": f"{i} Babbage Street", "city": "London", "country": "GB"},
        "tags": ["vip", "newsletter"],
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-06-01T12:00:00Z",
    }


def _serve(port: int) -> None:
    small = orjson.dumps({"data": [_record(1)], "total": 1})
    page = orjson.dumps({"data": [_record(i) for i in range(1000)], "total": 1000})

    async def one(request: web.Request) -> web.Response:
        return web.Response(body=small, content_type="application/json")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="application/json")

    app = web.Application()
    app.router.add_get("/one", one)
    app.router.add_get("/page", big)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


Fetch = Callable[[str], Awaitable[Any]]


async def _small(fetch: Fetch, base: str, n: int, concurrency: int) -> float:
    queue = iter(range(n))

    async def worker() -> None:
        for _ in queue:
            await fetch(f"{base}/one")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


async def _pages(fetch: Fetch, base: str, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        body = await fetch(f"{base}/page")
        assert len(body["data"]) == 1000
    return n / (time.perf_counter() - started)


def _apiclient(base: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    client = ApiClient(
        base,
        auth=BearerAuth(TOKEN),
        retry=RetryPolicy(max_attempts=4),
        # A limit far above what the benchmark reaches: the layer runs, never waits.
        rate_limiter=RateLimiter(TokenBucket(1_000_000, 1_000_000, time.monotonic())),
    )

    async def fetch(url: str) -> Any:
        return orjson.loads((await client.get(url)).content)

    return fetch, client.aclose


def _httpx(base: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    client = httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"})

    async def fetch(url: str) -> Any:
        response = await client.get(url)
        response.raise_for_status()
        return orjson.loads(response.content)

    return fetch, client.aclose


def _httpx_aiohttp(base: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    from httpx_aiohttp import AiohttpTransport

    client = httpx.AsyncClient(
        headers={"Authorization": f"Bearer {TOKEN}"}, transport=AiohttpTransport()
    )

    async def fetch(url: str) -> Any:
        response = await client.get(url)
        response.raise_for_status()
        return orjson.loads(response.content)

    return fetch, client.aclose


def _aiohttp(base: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})

    async def fetch(url: str) -> Any:
        async with session.get(url) as response:
            response.raise_for_status()
            return orjson.loads(await response.read())

    return fetch, session.close


CONTENDERS = {
    "ApiClient": _apiclient,
    "httpx.AsyncClient": _httpx,
    "httpx + httpx-aiohttp": _httpx_aiohttp,
    "aiohttp.ClientSession": _aiohttp,
}


async def _measure(base: str, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {
        name: {"small": [], "pages": []} for name in CONTENDERS
    }
    for _ in range(args.rounds):
        for name, factory in CONTENDERS.items():
            fetch, close = factory(base)
            try:
                await fetch(f"{base}/one")  # open the pool before the clock starts
                results[name]["small"].append(await _small(fetch, base, args.small, 16))
                results[name]["pages"].append(await _pages(fetch, base, args.pages))
            finally:
                await close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--pages", type=int, default=100)
    args = parser.parse_args()

    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    try:
        wait_for_port(port)
        results = asyncio.run(_measure(f"http://127.0.0.1:{port}", args))
    finally:
        server.terminate()
        server.join(5)

    med = {
        name: {kind: statistics.median(values) for kind, values in runs.items()}
        for name, runs in results.items()
    }
    print(
        f"# http_overhead: {platform.machine()}, {multiprocessing.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, httpx {httpx.__version__}, "
        f"aiohttp {aiohttp.__version__}; median of {args.rounds} rounds"
    )
    print(f"{'client':24} {'small req/s':>12} {'pages/s':>9}   (min-max)")
    for name, runs in results.items():
        small, pages = runs["small"], runs["pages"]
        print(
            f"{name:24} {med[name]['small']:12,.0f} {med[name]['pages']:9,.1f}   "
            f"small {min(small):,.0f}-{max(small):,.0f}, pages {min(pages):,.1f}-{max(pages):,.1f}"
        )
    api, bare, raw = med["ApiClient"], med["httpx.AsyncClient"], med["aiohttp.ClientSession"]
    checks = [
        ("(a) ApiClient / httpx.AsyncClient", api["small"] / bare["small"], 3.0),
        ("(a) ApiClient / aiohttp", api["small"] / raw["small"], 0.35),
        ("(b) ApiClient / aiohttp", api["pages"] / raw["pages"], 0.9),
    ]
    for label, ratio, target in checks:
        verdict = "ok" if ratio >= target else "BELOW TARGET"
        print(f"{label:36} {ratio:5.2f}x   target >= {target}x   {verdict}")


if __name__ == "__main__":
    main()
