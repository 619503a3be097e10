"""Real local HTTP servers that behave like the third-party APIs interlink integrates.

The sandbox stands in for someone else's system, so it imports nothing from the rest of
interlink. The services:

- `create_shop_app`: a REST source of customers (in every pagination style), products
  and orders, with bearer or API-key auth, rate limits and faults (`_shop`).
- `create_commerce_app`: an OroCommerce-style JSON:API target behind OAuth2 client
  credentials (`_commerce`).
- `create_oauth_provider_app`: an OAuth2 authorization server (authorization code with
  PKCE, rotating refresh tokens, revocation) and the API its tokens unlock, for
  `auth.type: oauth2` connections (`_oauth_provider`, `_oauth_provider_app`).
- GraphQL and SOAP product services (`_graphql`, `_soap`).
- `WebhookSender` / `WebhookTarget`: the shop posts a signed event (Standard Webhooks,
  generic HMAC, Stripe, GitHub or Shopify style) for every record it changes
  (`_webhooks`, `_webhook_signing`).
- `create_sandbox_app`: all of them in one app under `/shop`, `/commerce`, `/provider`,
  `/graphql` and `/soap` (`_suite`); `interlink sandbox` serves it.

```python
from interlink.sandbox import SandboxServer, create_shop_app

with SandboxServer(create_shop_app(records=10_000, token="secret")) as server:
    ...  # point a connector at server.url
```
"""

from ._admin import SandboxStats
from ._commerce import (
    CommerceCustomer,
    CommerceCustomerStore,
    create_commerce_app,
    make_commerce_customer,
)
from ._data import Address, Customer, CustomerStore, make_customer, make_customers
from ._faults import DroppedConnectionError, FaultConfig
from ._oauth_provider import (
    DEFAULT_ACCOUNTS,
    DEFAULT_CLIENT,
    DEFAULT_REDIRECT_URI,
    AccessGrant,
    AuthorizeError,
    OAuthAccount,
    OAuthClient,
    OAuthProvider,
    OAuthProviderStats,
)
from ._oauth_provider_app import create_oauth_provider_app
from ._orders import Order, OrderItem, OrderStore, make_order, order_count, order_ids_of
from ._pagination import DEFAULT_LIMIT, MAX_LIMIT
from ._products import Product, make_product, make_products
from ._ratelimit import RateLimitDecision, RateLimitHeaderStyle, TokenBucket, rate_limit_headers
from ._server import SandboxServer, run_sandbox, run_sandbox_suite
from ._shop import ShopOptions, create_shop_app
from ._store import ProductStore
from ._suite import create_sandbox_app, service_urls
from ._webhook_signing import (
    WEBHOOK_SCHEMES,
    InvalidWebhookTargetError,
    WebhookScheme,
    WebhookTarget,
)
from ._webhooks import WebhookSender, WebhookStats

__all__ = [
    "AccessGrant",
    "Address",
    "AuthorizeError",
    "CommerceCustomer",
    "CommerceCustomerStore",
    "Customer",
    "CustomerStore",
    "DEFAULT_ACCOUNTS",
    "DEFAULT_CLIENT",
    "DEFAULT_LIMIT",
    "DEFAULT_REDIRECT_URI",
    "DroppedConnectionError",
    "FaultConfig",
    "InvalidWebhookTargetError",
    "MAX_LIMIT",
    "OAuthAccount",
    "OAuthClient",
    "OAuthProvider",
    "OAuthProviderStats",
    "Order",
    "OrderItem",
    "OrderStore",
    "Product",
    "ProductStore",
    "RateLimitDecision",
    "RateLimitHeaderStyle",
    "SandboxServer",
    "SandboxStats",
    "ShopOptions",
    "TokenBucket",
    "WEBHOOK_SCHEMES",
    "WebhookScheme",
    "WebhookSender",
    "WebhookStats",
    "WebhookTarget",
    "create_commerce_app",
    "create_oauth_provider_app",
    "create_sandbox_app",
    "create_shop_app",
    "make_commerce_customer",
    "make_customer",
    "make_customers",
    "make_order",
    "make_product",
    "make_products",
    "order_count",
    "order_ids_of",
    "rate_limit_headers",
    "run_sandbox",
    "run_sandbox_suite",
    "service_urls",
]
