"""The whole sandbox in one ASGI app: every stand-in third party under its own prefix.

- `/shop/...`: `create_shop_app` (bearer `token`, customers, products, orders);
  its `Link` and `next` URLs carry the `/shop` prefix.
- `/commerce/...`: `create_commerce_app` (OAuth2 at `/commerce/oauth2-token`, JSON:API
  at `/commerce/api/customers`).
- `/provider/...`: `create_oauth_provider_app` (an OAuth2 authorization server with
  PKCE and rotating refresh tokens at `/provider/oauth/authorize`, `/provider/oauth/token`
  and `/provider/oauth/revoke`; each connected account's customers at
  `/provider/api/customers`).
- `/graphql`: `create_graphql_app` (`POST /graphql`; bearer `token`).
- `/soap`: `create_soap_app` (`POST /soap`, the WSDL at `GET /soap?wsdl`).
- `GET /`: the services and their absolute URLs as JSON (`service_urls`).

`webhooks` makes the shop post signed change events (`create_shop_app`, `_webhooks`);
`POST /shop/_webhooks` sets or changes the target later.

Each service keeps its own data, counters (`/shop/_stats`, `/commerce/_stats`,
`/provider/_stats`), rate limit and faults; `rate_limit` and `faults` apply to the shop
and commerce services, each with a bucket and a fault sequence of its own. `provider`
configures the OAuth2 provider (`OAuthProvider`: clients, accounts, lifetimes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from ._commerce import create_commerce_app
from ._faults import FaultConfig
from ._oauth_provider import DEFAULT_CLIENT, OAuthClient, OAuthProvider
from ._oauth_provider_app import create_oauth_provider_app
from ._responses import JSONResponse, error_response
from ._shop import create_shop_app
from ._webhook_signing import WebhookTarget
from ._webhooks import WebhookSender

__all__ = ["create_sandbox_app", "service_urls"]


def service_urls(
    base_url: str,
    *,
    client_id: str = "commerce-client",
    client_secret: str = "commerce-secret",
    provider_client: OAuthClient = DEFAULT_CLIENT,
) -> dict[str, dict[str, str]]:
    """The absolute URLs of every service of a suite served at `base_url`.

    `provider_client` is the provider's client whose credentials are listed.
    """
    base = base_url.rstrip("/")
    return {
        "shop": {
            "url": f"{base}/shop",
            "customers": f"{base}/shop/customers",
            "products": f"{base}/shop/products",
            "orders": f"{base}/shop/orders",
            "stats": f"{base}/shop/_stats",
        },
        "commerce": {
            "url": f"{base}/commerce",
            "customers": f"{base}/commerce/api/customers",
            "token_url": f"{base}/commerce/oauth2-token",
            "client_id": client_id,
            "client_secret": client_secret,
            "stats": f"{base}/commerce/_stats",
        },
        "provider": {
            "url": f"{base}/provider",
            "authorize_url": f"{base}/provider/oauth/authorize",
            "token_url": f"{base}/provider/oauth/token",
            "revoke_url": f"{base}/provider/oauth/revoke",
            "api": f"{base}/provider/api",
            "customers": f"{base}/provider/api/customers",
            "client_id": provider_client.client_id,
            "client_secret": provider_client.client_secret,
            "redirect_uri": provider_client.redirect_uri,
            "stats": f"{base}/provider/_stats",
        },
        "graphql": {"url": f"{base}/graphql"},
        "soap": {"url": f"{base}/soap", "wsdl": f"{base}/soap?wsdl"},
    }


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    return error_response(
        exc.status_code, codes.get(exc.status_code, "http_error"), exc.detail, headers=exc.headers
    )


def create_sandbox_app(
    *,
    records: int = 1000,
    seed: int = 42,
    token: str | None = "sandbox-token",
    rate_limit: tuple[float, float, int] | None = None,
    faults: FaultConfig | None = None,
    cache_pages: bool = False,
    commerce_records: int = 0,
    commerce_overlap: int = 0,
    client_id: str = "commerce-client",
    client_secret: str = "commerce-secret",
    webhooks: WebhookTarget | WebhookSender | None = None,
    provider: OAuthProvider | None = None,
) -> Starlette:
    """Build the suite: shop, commerce, OAuth2 provider, GraphQL and SOAP services in one app.

    `records` customers (and as many products) for the shop, and products for GraphQL
    and SOAP; `token` guards the shop and GraphQL; the commerce store starts with
    `commerce_records` customers, the first `commerce_overlap` sharing shop emails;
    `cache_pages` serves the shop's lists from a page cache and `webhooks` sends the shop's
    change events (see `create_shop_app`); `provider` configures the OAuth2 provider
    (clients, accounts, lifetimes; see `OAuthProvider`).

    ```python
    with SandboxServer(create_sandbox_app(records=500)) as server:
        httpx.get(f"{server.url}/")  # where everything is
    ```
    """
    # Imported here: the GraphQL and SOAP servers pull in strawberry and spyne, which
    # the shop alone (interlink demo, most tests) does not need.
    from ._graphql import create_graphql_app
    from ._soap import create_soap_app

    shop = create_shop_app(
        records=records,
        seed=seed,
        token=token,
        rate_limit=rate_limit,
        faults=faults,
        cache_pages=cache_pages,
        webhooks=webhooks,
    )
    commerce = create_commerce_app(
        records=commerce_records,
        seed=seed,
        overlap=commerce_overlap,
        client_id=client_id,
        client_secret=client_secret,
        rate_limit=rate_limit,
        faults=faults,
    )
    oauth = create_oauth_provider_app(provider, seed=seed)
    oauth_provider: OAuthProvider = oauth.state.provider
    graphql = create_graphql_app(records=records, seed=seed, token=token)
    soap = create_soap_app(records=records, seed=seed)

    async def index(request: Request) -> Response:
        urls: dict[str, Any] = service_urls(
            str(request.base_url),
            client_id=client_id,
            client_secret=client_secret,
            provider_client=next(iter(oauth_provider.clients.values())),
        )
        if token is not None:
            urls["shop"]["auth"] = urls["graphql"]["auth"] = f"Authorization: Bearer {token}"
        return JSONResponse({"services": urls})

    sender: WebhookSender = shop.state.webhooks

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # A mounted app's own lifespan does not run: flush the shop's webhooks from here.
        await sender.aclose()

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Mount("/shop", shop),
            Mount("/commerce", commerce),
            Mount("/provider", oauth),
            # A Route passes `/graphql` and `/soap` themselves (a Mount would redirect them
            # to `/graphql/`); the Mounts serve what lies below.
            Route("/graphql", graphql),
            Mount("/graphql", graphql),
            Route("/soap", soap),
            Mount("/soap", soap),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.shop = shop
    app.state.commerce = commerce
    app.state.provider = oauth
    app.state.graphql = graphql
    app.state.soap = soap
    return app
