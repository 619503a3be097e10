"""Fixtures for the dashboard tests: the real app on a real SQLite file, real API keys, and
an httpx "browser" that keeps cookies and signs in through the form as a person would."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from interlink.config import InterlinkConfig
from interlink.jobs import Queue, open_queue
from interlink.sandbox import OAuthClient, OAuthProvider, SandboxServer, create_sandbox_app
from interlink.server import create_app
from interlink.server.dashboard import mount_dashboard
from interlink.store import (
    ApiKeyScope,
    CreatedApiKey,
    Store,
    add_conflict,
    create_api_key,
    deliveries,
)
from tests.webhooks.conftest import STANDARD_SECRET

HOST = "interlink.test"
ORIGIN = f"http://{HOST}"
CLIENT, SECRET = "provider-client", "provider-secret"
CALLBACK_PORT = 8765
"""Where the httpx tests' provider connection says its callback is (nothing listens)."""

SLOW_TOKEN = "slow-shop-token"
HANDLER = "tests.server.dashboard.handlers:flaky"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def with_dashboard(app: FastAPI) -> FastAPI:
    """The app with the dashboard mounted, unless `create_app` already mounts it."""
    if not any(getattr(route, "path", None) == "/login" for route in app.routes):
        mount_dashboard(app)
    return app


def dashboard_config(
    database: str,
    sandbox: str = "http://127.0.0.1:9",
    *,
    callback_port: int = CALLBACK_PORT,
    server: dict[str, Any] | None = None,
    slow_shop: str | None = None,
) -> InterlinkConfig:
    """The sandbox suite behind three connections (shop: bearer, commerce: client
    credentials, provider: connect-your-account), a pipeline into SQL and one into the
    commerce API with manual conflicts, a webhook source whose handler can be told to fail,
    and a metric on a table the tests fill (`orders`). With `slow_shop` (a shop whose
    pages are slow), a connection `slowshop` and a pipeline `slow_customers` reading it
    five records a page: a run that lasts long enough to be watched."""
    slow: dict[str, Any] = {"connections": {}, "resources": {}, "pipelines": {}}
    if slow_shop is not None:
        slow["connections"]["slowshop"] = {
            "base_url": slow_shop,
            "auth": {"type": "bearer", "token": SLOW_TOKEN},
        }
        slow["resources"]["slowshop"] = {
            "customers": {
                "path": "/customers",
                "records": "data",
                "paginate": {"type": "offset", "page_size": 5},
            }
        }
        slow["pipelines"]["slow_customers"] = {
            "source": "slowshop.customers",
            "destination": {"sql": "slow_customers"},
        }
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {
                "shop": {
                    "base_url": f"{sandbox}/shop",
                    "auth": {"type": "bearer", "token": "sandbox-token"},
                },
                "commerce": {
                    "base_url": f"{sandbox}/commerce",
                    "auth": {
                        "type": "oauth2_client_credentials",
                        "token_url": "oauth2-token",
                        "client_id": "commerce-client",
                        "client_secret": "commerce-secret",
                    },
                },
                "provider": {
                    "base_url": f"{sandbox}/provider/api",
                    "auth": {
                        "type": "oauth2",
                        "authorize_url": f"{sandbox}/provider/oauth/authorize",
                        "token_url": f"{sandbox}/provider/oauth/token",
                        "redirect_uri": (
                            f"http://127.0.0.1:{callback_port}/connect/provider/callback"
                        ),
                        "client_id": CLIENT,
                        "client_secret": SECRET,
                        "auth_method": "client_secret_post",
                        "scope": "read",
                    },
                },
                **slow["connections"],
            },
            "resources": {
                "shop": {
                    "customers": {
                        "path": "/customers",
                        "records": "data",
                        "paginate": {"type": "offset", "page_size": 100},
                    }
                },
                "commerce": {
                    "customers": {
                        "path": "/api/customers",
                        "format": "jsonapi",
                        "paginate": {"type": "next_url", "next_path": "links.next"},
                    }
                },
                **slow["resources"],
            },
            "pipelines": {
                "customers": {"source": "shop.customers", "destination": {"sql": "customers"}},
                "to_commerce": {
                    "source": "shop.customers",
                    "destination": "commerce.customers",
                    "fields": {"email": "email", "company": "company", "first_name": "first_name"},
                    "match": "email",
                    "conflict": "manual",
                },
                **slow["pipelines"],
            },
            "webhooks": {
                "shop": {
                    "scheme": "standard",
                    "secret": STANDARD_SECRET,
                    "max_attempts": 1,
                    "actions": {"order.created": {"handler": HANDLER}},
                }
            },
            "metrics": {
                "orders_per_day": {
                    "source": "sql:orders",
                    "time_field": "created_at",
                    "op": "count",
                    "group_by": "status",
                    "period": "7d",
                    "timezone": "UTC",
                }
            },
            "jobs": {"poll_interval": 0.1, "retry_delay": 0.1},
            **({"server": server} if server else {}),
        }
    )


ORDERS = [
    # (days before today, status): 3 paid and 1 new today, 2 paid yesterday, 1 new and 1
    # refunded three days ago; one order 20 days ago, outside the 7 days.
    (0, "paid"),
    (0, "paid"),
    (0, "paid"),
    (0, "new"),
    (1, "paid"),
    (1, "paid"),
    (3, "new"),
    (3, "refunded"),
    (20, "paid"),
]


def fill_orders(engine: sa.Engine, rows: list[tuple[int, str]] = ORDERS) -> None:
    """The metric's table: orders at noon UTC, `days` before today."""
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    table = sa.Table(
        "orders",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.Text),
        sa.Column("created_at", sa.Text),
    )
    with engine.begin() as conn:
        table.create(conn, checkfirst=True)
        conn.execute(
            sa.insert(table),
            [
                {
                    "status": status,
                    "created_at": (today - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
                for days, status in rows
            ],
        )


def add_delivery(
    store: Store,
    *,
    status: str = "failed",
    body: bytes = b'{"id":"evt_1","type":"order.created","order":{"id":7}}',
    headers: dict[str, str] | None = None,
    last_error: str | None = "RuntimeError: the handler is told to fail",
) -> int:
    """A delivery row as the inbox stores one."""
    now = time.time()
    with store.transaction() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar_one()
        inserted = conn.execute(
            sa.insert(deliveries).values(
                source="shop",
                delivery_id=f"evt_{count + 1}",
                event_type="order.created",
                status=status,
                received_at=now,
                attempts=1,
                last_error=last_error,
                body=body,
                headers=headers if headers is not None else {"webhook-id": f"evt_{count + 1}"},
                processed_at=now if status in ("processed", "failed") else None,
            )
        ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def add_open_conflict(store: Store, **records: Any) -> int:
    with store.transaction() as conn:
        add_conflict(
            conn,
            "to_commerce",
            source_key=str(records.get("source_key", "1")),
            target_key=str(records.get("target_key", "c-1")),
            source_version=None,
            source_record=records.get("source", {"email": "a@example.com", "company": "Shop"}),
            target_record=records.get("target", {"email": "a@example.com", "company": "Commerce"}),
            run_id=None,
        )
        found = conn.execute(sa.text("SELECT max(id) FROM interlink_conflicts")).scalar_one()
    return int(found)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, f"no csrf field in the page: {html[:500]}"
    return found.group(1)


@dataclass
class Browser:
    """An httpx client that keeps cookies, as one browser would."""

    client: httpx.AsyncClient
    csrf: str = ""

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def post(
        self,
        path: str,
        fields: dict[str, str] | None = None,
        *,
        csrf: bool = True,
        origin: str | None = ORIGIN,
        **kwargs: Any,
    ) -> httpx.Response:
        data = dict(fields or {})
        if csrf:
            data.setdefault("csrf", self.csrf)
        headers = {**({"Origin": origin} if origin else {}), **kwargs.pop("headers", {})}
        return await self.client.post(path, data=data, headers=headers, **kwargs)

    async def sign_in(self, secret: str, *, next_: str | None = None) -> httpx.Response:
        """Fill in the sign-in form; afterwards `csrf` holds the session's form token."""
        form = await self.get("/login")
        assert form.status_code == 200, form.text
        fields = {"key": secret, "csrf": csrf_of(form.text)}
        if next_ is not None:
            fields["next"] = next_
        answer = await self.post("/login", fields, csrf=False)
        if answer.status_code == 303:
            overview = await self.get("/")
            assert overview.status_code == 200, overview.text
            self.csrf = csrf_of(overview.text)
        return answer


@dataclass
class Dash:
    """The app, its store and queue, and a key of each scope."""

    app: FastAPI
    config: InterlinkConfig
    store: Store
    queue: Queue
    transport: httpx.ASGITransport
    keys: dict[str, CreatedApiKey] = field(default_factory=dict)
    browsers: list[Browser] = field(default_factory=list)

    def browser(self) -> Browser:
        client = httpx.AsyncClient(
            transport=self.transport, base_url=ORIGIN, follow_redirects=False
        )
        made = Browser(client)
        self.browsers.append(made)
        return made

    async def signed_in(self, scope: str = "write") -> Browser:
        made = self.browser()
        answer = await made.sign_in(self.keys[scope].secret)
        assert answer.status_code == 303, answer.text
        return made


DashFactory = Callable[..., Any]


@pytest.fixture
async def make_dash(tmp_path: Path) -> AsyncIterator[DashFactory]:
    made: list[Dash] = []

    async def factory(
        *,
        sandbox: str = "http://127.0.0.1:9",
        server: dict[str, Any] | None = None,
        client: tuple[str, int] = ("127.0.0.1", 40000),
    ) -> Dash:
        config = dashboard_config(
            f"sqlite:///{tmp_path / f'dash{len(made)}.db'}", sandbox, server=server
        )
        store = Store.open(config.database)
        queue = open_queue(config, store)
        app = with_dashboard(create_app(config, store=store, queue=queue))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client)
        dash = Dash(app, config, store, queue, transport)
        scopes: tuple[ApiKeyScope, ...] = ("read", "write", "admin")
        for scope in scopes:
            dash.keys[scope] = create_api_key(store.engine, f"{scope} key", scope)
        made.append(dash)
        return dash

    yield factory
    for dash in made:
        for browser in dash.browsers:
            await browser.client.aclose()
        dash.queue.close()
        dash.store.close()


@pytest.fixture
async def dash(make_dash: DashFactory) -> Dash:
    made: Dash = await make_dash()
    return made


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, OAuthProvider]]:
    """The sandbox suite (shop, commerce with 3 shop customers in it, the OAuth provider)."""
    provider = OAuthProvider()
    redirect = f"http://127.0.0.1:{CALLBACK_PORT}/connect/provider/callback"
    provider.clients[CLIENT] = OAuthClient(CLIENT, SECRET, redirect)
    app = create_sandbox_app(records=30, commerce_records=10, commerce_overlap=3, provider=provider)
    with SandboxServer(app) as server:
        yield server.url, provider
