"""Fixtures for the API tests: the real app on a real database, with real API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from interlink.config import InterlinkConfig
from interlink.jobs import Queue, open_queue
from interlink.server import create_app
from interlink.store import Store, create_api_key

SHOP_TOKEN = "server-shop-token"
API = "/api/v1"


def make_config(
    database: str,
    *,
    shop_url: str = "http://127.0.0.1:9",
    server: dict[str, Any] | None = None,
    jobs: dict[str, Any] | None = None,
) -> InterlinkConfig:
    """Two connections (shop, warehouse), customers and orders, three pipelines."""
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {
                "shop": {
                    "base_url": shop_url,
                    "auth": {"type": "bearer", "token": SHOP_TOKEN},
                },
                "warehouse": {
                    "base_url": "https://ops:hunter2@warehouse.example/api",
                    "params": {"api_key": "sekrit-value"},
                },
            },
            "resources": {
                "shop": {
                    "customers": {
                        "path": "/customers",
                        "records": "data",
                        "paginate": {"type": "offset", "page_size": 100},
                        "incremental": {"field": "updated_at", "param": "updated_since"},
                    },
                },
                "warehouse": {"stock": {"path": "/stock"}},
            },
            "pipelines": {
                "customers": {"source": "shop.customers", "destination": {"sql": "customers"}},
                "customers_copy": {
                    "source": "shop.customers",
                    "destination": {"sql": "customers_copy"},
                    "schedule": "@daily",
                },
                "stock": {"source": "warehouse.stock", "destination": {"sql": "stock"}},
            },
            **({"server": server} if server else {}),
            **({"jobs": jobs} if jobs else {}),
        }
    )


@dataclass
class Api:
    """The app, its store and queue, an httpx client on it and a key of each scope."""

    app: Any
    config: InterlinkConfig
    store: Store
    queue: Queue
    client: httpx.AsyncClient
    keys: dict[str, str] = field(default_factory=dict)

    def auth(self, scope: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    async def get(self, path: str, scope: str = "admin", **kwargs: Any) -> httpx.Response:
        headers = {**self.auth(scope), **kwargs.pop("headers", {})}
        return await self.client.get(API + path, headers=headers, **kwargs)

    async def post(self, path: str, scope: str = "admin", **kwargs: Any) -> httpx.Response:
        headers = {**self.auth(scope), **kwargs.pop("headers", {})}
        return await self.client.post(API + path, headers=headers, **kwargs)

    def new_key(self, name: str, scope: str = "admin") -> str:
        secret = create_api_key(self.store.engine, name, scope).secret  # type: ignore[arg-type]
        self.keys[name] = secret
        return secret


ApiFactory = Callable[..., Any]


@pytest.fixture
async def make_api(tmp_path) -> AsyncIterator[ApiFactory]:
    """`await make_api(server={...}, database=url)`: an Api on a fresh SQLite file by default."""
    made: list[Api] = []

    async def factory(
        *,
        database: str | None = None,
        server: dict[str, Any] | None = None,
        jobs: dict[str, Any] | None = None,
        shop_url: str = "http://127.0.0.1:9",
        worker: bool = False,
        client: tuple[str, int] = ("127.0.0.1", 40000),
    ) -> Api:
        url = database or f"sqlite:///{tmp_path / f'api{len(made)}.db'}"
        config = make_config(url, shop_url=shop_url, server=server, jobs=jobs)
        store = Store.open(config.database)
        queue = open_queue(config, store)
        app = create_app(config, store=store, queue=queue, worker=worker)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client)
        http = httpx.AsyncClient(transport=transport, base_url="http://interlink.test")
        api = Api(app, config, store, queue, http)
        for scope in ("read", "write", "admin"):
            api.keys[scope] = create_api_key(store.engine, f"{scope} key", scope).secret
        made.append(api)
        return api

    yield factory
    for api in made:
        await api.client.aclose()
        api.queue.close()
        api.store.close()


@pytest.fixture
async def api(make_api) -> Api:
    return await make_api()


def assert_meta(body: dict[str, Any], response: httpx.Response) -> None:
    meta = body["meta"]
    assert meta["request_id"] == response.headers["x-request-id"]
    assert meta["timestamp"].endswith("Z") and "T" in meta["timestamp"]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error", body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    assert set(body) == {"status", "error", "meta"}
    assert_meta(body, response)
    return body["error"]
