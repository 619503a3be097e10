"""Pushing records into a rate-limited API: requests/s achieved and 429s received.

The sandbox suite (shop + commerce) in a child process; commerce enforces 200 requests/s
(burst 10) and answers 429 with Retry-After and rate-limit headers beyond that. interlink
runs a pipeline of `--records` shop customers into commerce (OAuth2 client credentials,
JSON:API creates with idempotency keys), with the commerce connection's client-side bucket
set to the server's rate with half its burst. Target (issue 4): at least 190 requests/s, under 1% of
requests answered 429.

    .venv/bin/python benchmarks/push.py [--records 5000] [--limit 200] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from _local_server import free_port, wait_for_port
from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.store import Store
from interlink.sync import run_pipeline

TOKEN = "push-token"


def _serve(port: int, records: int, limit: float) -> None:
    import uvicorn

    from interlink.sandbox import create_sandbox_app

    app = create_sandbox_app(records=records, token=TOKEN, rate_limit=(limit, 1.0, 10))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait(url: str) -> None:
    wait_for_port(int(url.rsplit(":", 1)[1]))


def _config(url: str, database: str, client_rate: float) -> InterlinkConfig:
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {
                "shop": {"base_url": f"{url}/shop", "auth": {"type": "bearer", "token": TOKEN}},
                "commerce": {
                    "base_url": f"{url}/commerce",
                    "auth": {
                        "type": "oauth2_client_credentials",
                        "token_url": "oauth2-token",
                        "client_id": "commerce-client",
                        "client_secret": "commerce-secret",
                    },
                    # The server's rate, half its burst: the other half absorbs the jitter
                    # of requests bunching on the way, so none is refused.
                    "rate_limit": {"rate": client_rate, "per": 1, "burst": 5},
                    "retry": {"idempotency_header": "Idempotency-Key"},
                    "max_connections": 64,
                },
            },
            "resources": {
                "shop": {
                    "customers": {
                        "path": "/customers",
                        "records": "data",
                        "paginate": {"type": "offset", "page_size": 1000},
                    }
                },
                "commerce": {"customers": {"path": "/api/customers", "format": "jsonapi"}},
            },
            "pipelines": {
                "push": {
                    "source": "shop.customers",
                    "destination": "commerce.customers",
                    "fields": {
                        "email": "email",
                        "first_name": "first_name",
                        "last_name": "last_name",
                        "company": "company",
                        "city": "address.city",
                    },
                    "concurrency": 32,
                }
            },
        }
    )


async def _push(url: str, records: int, client_rate: float) -> dict[str, Any]:
    before = httpx.get(f"{url}/commerce/_stats").json()
    with tempfile.TemporaryDirectory() as folder:
        config = _config(url, f"sqlite:///{Path(folder) / 'state.db'}", client_rate)
        store = Store.open(config.database)
        try:
            async with Catalog(config) as catalog:
                started = time.perf_counter()
                result = await run_pipeline(config, "push", store=store, catalog=catalog)
                elapsed = time.perf_counter() - started
                stats = catalog.client("commerce").stats
        finally:
            store.close()
    after = httpx.get(f"{url}/commerce/_stats").json()
    assert result.ok, result.errors
    assert result.counts["created"] == records, result.counts
    refused = stats.statuses.get(429, 0)
    return {
        "elapsed": elapsed,
        "requests": stats.attempts,
        "rps": stats.attempts / elapsed,
        "refused": refused,
        "refused_share": refused / stats.attempts,
        "creates": after["creates"] - before["creates"],
        "server_429": after["rate_limited"] - before["rate_limited"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--limit", type=float, default=200.0)
    parser.add_argument("--client-rate", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    port = free_port()
    # Each round needs fresh commerce data (creates of the same emails would be refused),
    # so each round gets its own server.
    rows = []
    for _ in range(args.rounds):
        server = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(port, args.records, args.limit), daemon=True
        )
        server.start()
        try:
            url = f"http://127.0.0.1:{port}"
            _wait(url)
            rows.append(asyncio.run(_push(url, args.records, args.client_rate)))
        finally:
            server.terminate()
            server.join(5)
    print(
        f"# push: {platform.machine()}, {multiprocessing.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}; {args.records:,} creates into commerce limited to "
        f"{args.limit:g}/s (burst 10), client bucket {args.client_rate:g}/s"
    )
    print(f"{'round':>5} {'requests':>9} {'wall s':>7} {'req/s':>7} {'429s':>5} {'429 %':>6}")
    for n, row in enumerate(rows, 1):
        print(
            f"{n:>5} {row['requests']:>9,} {row['elapsed']:>7.2f} {row['rps']:>7.1f} "
            f"{row['refused']:>5} {row['refused_share'] * 100:>5.2f}%"
        )
        assert row["creates"] == args.records, "every record created exactly once"
    best = max(rows, key=lambda r: r["rps"])
    worst_refused = max(r["refused_share"] for r in rows)
    rate_ok = best["rps"] >= 190 * args.limit / 200
    refused_ok = worst_refused < 0.01
    print(
        f"requests/s {best['rps']:.1f} (target >= {190 * args.limit / 200:g}): "
        f"{'ok' if rate_ok else 'BELOW TARGET'}"
    )
    print(
        f"429 share {worst_refused * 100:.2f}% (target < 1%): "
        f"{'ok' if refused_ok else 'ABOVE TARGET'}"
    )


if __name__ == "__main__":
    main()
