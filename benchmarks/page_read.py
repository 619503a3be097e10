"""What reading one large page costs the thread transport's worker: httpx's blocking
client (httpcore and h11, what `ThreadTransport` sent through until session 12) against
`Http11Pool` (the standard library's `http.client`, what it sends through now), in one
run against one server.

The server is http_overhead's (aiohttp.web in a child process, a precomputed 1,000-record
page of ~350 kB at /page). Each contender reads `--pages` pages sequentially on one
keep-alive connection, body read whole and not parsed (parsing is the same for both),
`--rounds` times, interleaved; medians count. CPU is this process's user + system time
over the reads: on a worker thread it is the GIL the event loop waits for (issue 15,
section 4: a 100,000-record run is bound by it).

    .venv/bin/python benchmarks/page_read.py [--rounds 7] [--pages 100]
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable

import httpx

from _local_server import free_port, wait_for_port
from http_overhead import _serve
from interlink.http._http11_pool import Http11Pool


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _httpcore(url: str, pages: int) -> int:
    read = 0
    with httpx.Client() as client:
        for _ in range(pages):
            read += len(client.get(url).content)
    return read


def _http_client(url: str, pages: int) -> int:
    read = 0
    pool = Http11Pool()
    try:
        for _ in range(pages):
            read += len(pool.send(httpx.Request("GET", url)).content)
    finally:
        pool.close()
    return read


CONTENDERS: dict[str, Callable[[str, int], int]] = {
    "httpx blocking (httpcore)": _httpcore,
    "Http11Pool (http.client)": _http_client,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pages", type=int, default=100)
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}/page"
        size = len(httpx.get(url).content)
        wall: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        cpu: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        for round_ in range(args.rounds):
            names = list(CONTENDERS) if round_ % 2 == 0 else list(CONTENDERS)[::-1]
            for name in names:
                started, cpu_started = time.perf_counter(), _cpu()
                read = CONTENDERS[name](url, args.pages)
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(_cpu() - cpu_started)
                assert read == size * args.pages, (name, read)
    finally:
        server.terminate()
        server.join(5)
    print(
        f"# page_read: {platform.machine()}, Python {platform.python_version()}, httpx "
        f"{httpx.__version__}; {args.pages} pages of {size:,} bytes; median of {args.rounds}"
    )
    print(f"{'contender':28} {'wall s':>8} {'cpu s':>8} {'cpu ms/page':>12}")
    medians = {}
    for name in CONTENDERS:
        medians[name] = statistics.median(cpu[name])
        print(
            f"{name:28} {statistics.median(wall[name]):8.3f} {medians[name]:8.3f} "
            f"{medians[name] / args.pages * 1000:12.2f}"
        )
    old, new = (medians[name] for name in CONTENDERS)
    print(f"\nCPU per page, httpcore / http.client: {old / new:.1f}x")
    sys.exit(0)


if __name__ == "__main__":
    main()
