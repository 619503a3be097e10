"""`interlink demo`: the main job, end to end against the bundled sandbox.

Starts the shop sandbox (rate limited, injecting 500s, 503s, slow answers and dropped
connections), loads `examples/quickstart/interlink.yaml` pointed at it, then through the
connection's `ApiClient` reads every customer page concurrently and creates customers with
idempotency keys. It checks what it did against the sandbox's own ledger: every record read
exactly once, every create applied exactly once, despite the faults.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from interlink.http import ApiClient, ClientStats

__all__ = ["DemoResult", "register", "run_demo"]

DEFAULT_PROJECT = Path("examples/quickstart/interlink.yaml")
SANDBOX_TOKEN = "sandbox-token"
PAGE_SIZE = 100
CONCURRENCY = 4


@dataclass
class DemoResult:
    """What the demo did and what the sandbox says happened."""

    records_expected: int
    ids_read: list[int] = field(default_factory=list)
    pages: int = 0
    creates_sent: int = 0
    created_ids: set[int] = field(default_factory=set)
    server: dict[str, Any] = field(default_factory=dict)
    client: ClientStats | None = None
    elapsed: float = 0.0

    @property
    def read_exactly_once(self) -> bool:
        return sorted(self.ids_read) == list(range(1, self.records_expected + 1))

    @property
    def created_exactly_once(self) -> bool:
        creates = int(self.server.get("creates", -1))
        return creates == self.creates_sent == len(self.created_ids)


async def _read_all(shop: ApiClient, result: DemoResult, advance: Any) -> None:
    first = await shop.get_json("/customers", params={"offset": 0, "limit": PAGE_SIZE})
    total = int(first["total"])
    result.records_expected = total
    result.ids_read.extend(int(c["id"]) for c in first["data"])
    result.pages = 1
    advance("read", 1, total=max(1, -(-total // PAGE_SIZE)))
    offsets = iter(range(PAGE_SIZE, total, PAGE_SIZE))

    async def worker() -> None:
        for offset in offsets:
            page = await shop.get_json("/customers", params={"offset": offset, "limit": PAGE_SIZE})
            result.ids_read.extend(int(c["id"]) for c in page["data"])
            result.pages += 1
            advance("read", 1)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def _create(shop: ApiClient, result: DemoResult, count: int, advance: Any) -> None:
    numbers = iter(range(count))
    advance("create", 0, total=max(1, count))

    async def worker() -> None:
        for n in numbers:
            response = await shop.post(
                "/customers",
                json={
                    "email": f"demo{n}@example.com",
                    "first_name": "Demo",
                    "last_name": f"Customer {n}",
                },
            )
            result.created_ids.add(int(response.json()["id"]))
            result.creates_sent += 1
            advance("create", 1)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def run_demo(
    project: Path, *, records: int, creates: int, seed: int, faults: bool, advance: Any
) -> DemoResult:
    """Serve the sandbox, run the reads and writes through interlink, return the tallies."""
    from interlink.config import load_config
    from interlink.errors import ConfigError
    from interlink.http import ApiClient
    from interlink.sandbox import FaultConfig, SandboxServer, create_shop_app

    fault_config = (
        FaultConfig(
            server_error_rate=0.03,
            unavailable_rate=0.03,
            drop_rate=0.01,
            lost_response_rate=0.02,
            slow_rate=0.02,
            slow_seconds=0.3,
            seed=seed,
        )
        if faults
        else None
    )
    app = create_shop_app(
        records=records,
        seed=seed,
        token=SANDBOX_TOKEN,
        rate_limit=(50.0, 1.0, 20),
        faults=fault_config,
    )
    result = DemoResult(records_expected=records)
    async with SandboxServer(app) as server:
        env = {**os.environ, "SHOP_URL": server.url, "SHOP_TOKEN": SANDBOX_TOKEN}
        config = load_config(project, env=env)
        if "shop" not in config.connections:
            raise ConfigError(
                "the demo needs a connection named 'shop'", file=str(project), key="connections"
            )
        started = time.perf_counter()
        async with ApiClient.from_config("shop", config.connections["shop"]) as shop:
            await _read_all(shop, result, advance)
            await _create(shop, result, creates, advance)
            result.elapsed = time.perf_counter() - started
            result.client = shop.stats
            result.server = await shop.get_json("/_stats")
    return result


def demo(
    config: Annotated[
        Path, typer.Option("--config", "-c", metavar="FILE", help="The demo project.")
    ] = DEFAULT_PROJECT,
    records: Annotated[int, typer.Option(min=1, help="Customers in the sandbox.")] = 2500,
    creates: Annotated[int, typer.Option(min=0, help="Customers to create.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the data and the faults.")] = 7,
    faults: Annotated[bool, typer.Option(help="Inject 500s, 503s, drops, slowness.")] = True,
) -> None:
    """Start the sandbox API and run a real, rate-limited, fault-tolerant exchange with it."""
    from interlink.cli import _render

    with _render.DemoProgress() as progress:
        result = asyncio.run(
            run_demo(
                config,
                records=records,
                creates=creates,
                seed=seed,
                faults=faults,
                advance=progress.advance,
            )
        )
    _render.show_demo(result)
    if not (result.read_exactly_once and result.created_exactly_once):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `demo` command to `app`."""
    app.command("demo")(demo)
