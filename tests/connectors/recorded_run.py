"""Run pipeline `items` of a config against a local API and give back its recorded run
(status, counts, message), whether it raised or not: the read-fault tests ask how a run
ended, not what it raised."""

from __future__ import annotations

import asyncio
from typing import Any

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.store import Store
from interlink.sync import run_pipeline


def recorded_run(config: InterlinkConfig, pipeline: str = "items") -> dict[str, Any]:
    store = Store.open(config.database)

    async def run() -> None:
        async with Catalog(config) as catalog:
            await run_pipeline(config, pipeline, store=store, catalog=catalog)

    try:
        asyncio.run(run())
    except Exception:  # the run is recorded, with the reason, before it goes on up
        pass
    try:
        (found,) = store.runs(pipeline, limit=1)
    finally:
        store.close()
    return found
