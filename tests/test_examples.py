"""Every example project validates, and the sandbox tour reads from every resource."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from interlink.config import load_config
from interlink.connectors import Catalog
from interlink.sandbox import SandboxServer, create_sandbox_app

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*/interlink.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_validates(path):
    load_config(path, env={})


def test_sandbox_tour_reads_every_resource():
    path = next(p for p in EXAMPLES if p.parent.name == "sandbox-tour")
    with SandboxServer(create_sandbox_app(records=150, commerce_records=30)) as server:
        config = load_config(path, env={"SANDBOX_URL": server.url})

        async def first_records() -> dict[str, int]:
            counts = {}
            async with Catalog(config) as catalog:
                for name in config.resource_names():
                    records = [r async for r in catalog.resource(name).records(limit=120)]
                    counts[name] = len(records)
            return counts

        counts = asyncio.run(first_records())
    assert counts.pop("commerce.customers") == 30
    assert counts.pop("shop.orders") == 120
    assert set(counts.values()) == {120}, counts
