from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog


class ItemsApi:
    """A small fake REST API over `n` items with offset, page and cursor listings."""

    def __init__(self, n: int, *, delay: float = 0.0) -> None:
        self.items = [
            {"id": i, "name": f"item {i}", "updated_at": f"2026-01-{1 + i % 28:02d}T00:00:00Z"}
            for i in range(1, n + 1)
        ]
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = delay

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        import asyncio

        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return self.route(request)
        finally:
            self.in_flight -= 1

    def route(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        items = self.items
        if "updated_since" in q:
            items = [i for i in items if i["updated_at"] >= q["updated_since"]]
        path = request.url.path
        if path == "/items":
            offset, limit = int(q.get("offset", 0)), int(q.get("limit", 10))
            return httpx.Response(
                200, json={"data": items[offset : offset + limit], "total": len(items)}
            )
        if path == "/envelope":
            return httpx.Response(200, json={"status": "error", "message": "export disabled"})
        if path == "/odd":
            return httpx.Response(200, json={"result": {"things": [1]}})
        return httpx.Response(404, json={"message": "no route"})


def make_catalog(resources: dict[str, Any], handler: Callable[..., Any]) -> Catalog:
    config = InterlinkConfig.model_validate(
        {
            "connections": {"api": {"base_url": "https://api.test", "retry": {"max_attempts": 1}}},
            "resources": {"api": resources},
        }
    )
    return Catalog(config, transport=httpx.MockTransport(handler))


@pytest.fixture
def catalog_factory():
    return make_catalog
