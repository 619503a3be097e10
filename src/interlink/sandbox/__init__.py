"""Real local HTTP servers that behave like the third-party APIs interlink integrates.

The sandbox stands in for someone else's system, so it imports nothing from the rest of
interlink.

```python
from interlink.sandbox import SandboxServer, create_shop_app

with SandboxServer(create_shop_app(records=10_000, token="secret")) as server:
    ...  # point a connector at server.url
```
"""

from ._admin import SandboxStats
from ._data import Address, Customer, CustomerStore, make_customer, make_customers
from ._faults import DroppedConnectionError, FaultConfig
from ._ratelimit import RateLimitDecision, RateLimitHeaderStyle, TokenBucket, rate_limit_headers
from ._server import SandboxServer, run_sandbox
from ._shop import DEFAULT_LIMIT, MAX_LIMIT, ShopOptions, create_shop_app

__all__ = [
    "Address",
    "Customer",
    "CustomerStore",
    "DEFAULT_LIMIT",
    "DroppedConnectionError",
    "FaultConfig",
    "MAX_LIMIT",
    "RateLimitDecision",
    "RateLimitHeaderStyle",
    "SandboxServer",
    "SandboxStats",
    "ShopOptions",
    "TokenBucket",
    "create_shop_app",
    "make_customer",
    "make_customers",
    "rate_limit_headers",
    "run_sandbox",
]
