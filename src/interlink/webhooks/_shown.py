"""One stored delivery as `GET /webhooks/deliveries/{id}` and `interlink webhooks show` give it.

```python
shown = delivery_details(get_delivery(store.engine, 42))
# {"id": 42, ..., "headers": {"stripe-signature": "***", ...}, "body": "{...}",
#  "body_base64": None}
```

The stored headers are the ones verification read, and never hold a secret; still, the
value of any header whose name looks like a credential or a signature (`Authorization`,
`X-API-Key`, `Stripe-Signature`, `Cookie`...) is masked here, so that a sender that puts
a key in a header of its own does not get it shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from interlink.http import MASK, SECRET_PARAM
from interlink.store import Delivery

__all__ = ["delivery_details", "shown_headers"]

_ALSO_SECRET = re.compile(r"cookie|hmac|^x-hub-signature")


def shown_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """`headers` with the values of credential- and signature-like ones masked."""
    return {
        name: MASK
        if SECRET_PARAM.search(name.lower()) or _ALSO_SECRET.search(name.lower())
        else value
        for name, value in headers.items()
    }


def delivery_details(delivery: Delivery) -> dict[str, Any]:
    """Everything about `delivery` (read with its body): its status and history, the
    headers (masked as above), and the raw body as text when it is UTF-8 (`body`), else
    base64 (`body_base64`); the other of the two is None."""
    shown = delivery.to_dict(body=True)
    shown["headers"] = shown_headers(delivery.headers)
    shown.setdefault("body", None)
    shown.setdefault("body_base64", None)
    return shown
