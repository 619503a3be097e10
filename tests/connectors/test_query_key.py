"""An `in: query` API key is sent once per request and kept out of pages, checkpoints, errors.

Issue 11: the sandbox shop (like many real APIs) builds its next links from the request's
own URL, so they carry the key; the key was then added again on every page (10 copies
after 10 pages), and `Page.url`, the checkpoints and the error messages held it. Pages
now show URLs as they were before auth, next links lose the connection's credential
before they are stored or followed, and the key is added once, at send time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog, Page
from interlink.errors import ApiError, InterlinkError
from interlink.sandbox import FaultConfig, SandboxServer, create_shop_app

KEY = "qkey-SECRET-7f3a9c1e+/="
ENCODED = quote(KEY, safe="")
PAGE = 10
PAGES = 10

STYLES: dict[str, dict[str, Any]] = {
    "next_url": {
        "path": "/customers/next-url",
        "records": "results",
        "paginate": {"type": "next_url", "next_path": "next", "page_size": PAGE},
    },
    "link_header": {
        "path": "/customers/link",
        "paginate": {"type": "link_header", "page_size": PAGE},
    },
}


class QueryLog:
    """ASGI middleware that keeps the query string of every request it passes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.queries: list[list[tuple[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.queries.append(parse_qsl(scope["query_string"].decode(), keep_blank_values=True))
        await self.app(scope, receive, send)


@pytest.fixture
def shop() -> Iterator[tuple[str, QueryLog]]:
    log = QueryLog(create_shop_app(records=PAGE * PAGES, api_key=KEY))
    with SandboxServer(log) as server:
        yield server.url, log


def catalog(url: str, resources: dict[str, Any]) -> Catalog:
    config = InterlinkConfig.model_validate(
        {
            "connections": {
                "shop": {
                    "base_url": url,
                    "auth": {"type": "api_key", "key": KEY, "name": "api_key", "in": "query"},
                    "retry": {"max_attempts": 1},
                }
            },
            "resources": {"shop": resources},
        }
    )
    return Catalog(config)


def leaks(value: Any) -> bool:
    text = orjson.dumps(value, default=str).decode()
    return any(form in text for form in (KEY, quote(KEY, safe=""), "api_key"))


@pytest.mark.parametrize("style", sorted(STYLES))
async def test_ten_pages_send_the_key_once_and_show_it_nowhere(shop, style: str) -> None:
    url, log = shop
    pages: list[Page] = []
    async with catalog(url, {"customers": STYLES[style]}) as cat:
        async for page in cat.resource("shop.customers").pages():
            pages.append(page)
    assert len(pages) == PAGES
    assert sum(len(p) for p in pages) == PAGE * PAGES
    assert len(log.queries) == PAGES
    for query in log.queries:
        assert [v for k, v in query if k == "api_key"] == [KEY], query
    for page in pages:
        assert page.url is not None and page.url.startswith(url)
        assert not leaks(page.url), page.url
        assert not leaks(page.checkpoint), page.checkpoint
    assert pages[1].checkpoint is not None


@pytest.mark.parametrize("style", sorted(STYLES))
async def test_resuming_from_a_checkpoint_that_holds_the_key(shop, style: str) -> None:
    """Checkpoints stored before the fix carry the key, sometimes many times over."""
    url, log = shop
    stale = {
        "next_url": (
            f"{url}/customers/next-url?offset=80&limit={PAGE}&api_key={KEY}&api_key={ENCODED}"
        ),
        "link_header": f"{url}/customers/link?page=9&per_page={PAGE}&api_key={ENCODED}",
    }[style]
    async with catalog(url, {"customers": STYLES[style]}) as cat:
        pages = [p async for p in cat.resource("shop.customers").pages(resume={"url": stale})]
    assert [len(p) for p in pages] == [PAGE, PAGE]
    for query in log.queries:
        assert [v for k, v in query if k == "api_key"] == [KEY], query
    assert not any(leaks(p.url) or leaks(p.checkpoint) for p in pages)


async def test_errors_of_a_read_never_hold_the_key(shop) -> None:
    url, _ = shop
    resources = {
        # The envelope says "error" on the third page (HTTP 200): the connector's own error.
        "envelope": {
            "path": "/customers/wrapped",
            "params": {"fail_at": 2 * PAGE},
            "records": "data.customers",
            "paginate": {"type": "offset", "page_size": PAGE, "total_path": "data.total"},
        },
        "not_found": {"path": "/nothing-here", "records": "data"},
        "no_records": {"path": "/customers/next-url", "records": "no.such.path"},
    }
    async with catalog(url, resources) as cat:
        for name in resources:
            with pytest.raises(InterlinkError) as caught:
                async for _ in cat.resource(f"shop.{name}").pages():
                    pass
            error = caught.value
            assert isinstance(error, ApiError), (name, error)
            shown = f"{error} {error!r} {error.url}"
            assert KEY not in shown and quote(KEY, safe="") not in shown, shown
            assert "api_key" not in shown, shown


async def test_a_server_error_on_a_query_key_connection_hides_the_key() -> None:
    app = create_shop_app(records=30, api_key=KEY, faults=FaultConfig(server_error_rate=1.0))
    with SandboxServer(app) as server:
        async with catalog(server.url, {"customers": STYLES["next_url"]}) as cat:
            with pytest.raises(ApiError) as caught:
                async for _ in cat.resource("shop.customers").pages():
                    pass
    shown = f"{caught.value} {caught.value!r}"
    assert caught.value.status_code == 500
    assert KEY not in shown and quote(KEY, safe="") not in shown and "api_key" not in shown


@pytest.mark.parametrize("style", sorted(STYLES))
async def test_a_key_in_the_connections_own_params_is_sent_once_and_shown_nowhere(
    shop, style: str
) -> None:
    """Review finding: a key in `params:` (not `auth:`) was kept in Page.url and in the
    checkpoints, and sent once more with every page (1, 2, 3, 4 copies)."""
    url, log = shop
    log.queries.clear()
    config = InterlinkConfig.model_validate(
        {
            "connections": {
                "shop": {"base_url": url, "params": {"api_key": KEY}, "retry": {"max_attempts": 1}}
            },
            "resources": {"shop": {"customers": STYLES[style]}},
        }
    )
    async with Catalog(config) as connected:
        pages = [page async for page in connected.resource("shop.customers").pages()]
    assert len(pages) >= 4
    assert not any(leaks(page.url) or leaks(page.checkpoint) for page in pages)
    assert [sum(1 for k, _ in q if k == "api_key") for q in log.queries] == [1] * len(log.queries)
