"""`verify`: is this delivery from the sender, and what is it? `sign`: the sender's side.

```python
from interlink.webhooks import verify

verified = verify(config.webhooks["billing"], request.headers, body, now=time.time())
verified.delivery_id, verified.event_type   # SignatureError (400/401) if it does not check out
```

Verification works on the raw body bytes exactly as received, compares in constant time
against every active secret, and refuses signed timestamps outside the source's tolerance in
both directions. Whatever the headers hold, the only exception it raises is a
`SignatureError`: a garbage header is a 400 or a 401, never a 500. The body is parsed as JSON
only after the signature checked out, and only when a delivery id or event type is read
from it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interlink.config import (
    HmacWebhookConfig,
    WebhookFieldConfig,
    WebhookSourceConfig,
)

from ._inputs import (
    Body,
    HeaderInput,
    HeaderView,
    Verified,
    delivery_token,
    missing_header,
    rejected,
)
from ._schemes import (
    Signed,
    sign_github,
    sign_hmac,
    sign_shopify,
    sign_slack,
    sign_standard,
    sign_stripe,
    verify_github,
    verify_hmac,
    verify_shopify,
    verify_slack,
    verify_standard,
    verify_stripe,
)

__all__ = ["SCHEME_DEFAULTS", "SchemeDefaults", "sign", "verify"]


@dataclass(frozen=True, slots=True)
class SchemeDefaults:
    """Where a scheme carries the delivery id and the event type when it does not sign them.

    A missing default id falls back to the body's SHA-256; a missing event type is None.
    """

    delivery_id: WebhookFieldConfig | None = None
    event_type: WebhookFieldConfig | None = None


SCHEME_DEFAULTS: dict[str, SchemeDefaults] = {
    # The delivery id is the signed webhook-id; the payload convention is {"type": ...}.
    "standard": SchemeDefaults(event_type=WebhookFieldConfig(path="type")),
    "stripe": SchemeDefaults(WebhookFieldConfig(path="id"), WebhookFieldConfig(path="type")),
    "github": SchemeDefaults(
        WebhookFieldConfig(header="X-GitHub-Delivery"), WebhookFieldConfig(header="X-GitHub-Event")
    ),
    "shopify": SchemeDefaults(
        WebhookFieldConfig(header="X-Shopify-Webhook-Id"),
        WebhookFieldConfig(header="X-Shopify-Topic"),
    ),
    "slack": SchemeDefaults(),
    "hmac": SchemeDefaults(),
}

_Verifier = Callable[[Any, HeaderView, Body, float], Signed]
_VERIFIERS: dict[str, _Verifier] = {
    "standard": verify_standard,
    "stripe": verify_stripe,
    "github": verify_github,
    "shopify": verify_shopify,
    "slack": verify_slack,
    "hmac": verify_hmac,
}


def verify(config: WebhookSourceConfig, headers: HeaderInput, body: bytes, now: float) -> Verified:
    """Check one delivery against its source's config and say what it is.

    `headers` is a mapping or raw `(name, value)` pairs (see `HeaderInput`), `body` the bytes
    as received, `now` the receiver's Unix time. You get a `SignatureError` (with `reason` and
    `status` 400 or 401) for anything that does not check out, malformed input included.
    Checking the body against `max_body` (413) and `enabled` (404) is the route's job.
    """
    if not math.isfinite(now):
        raise ValueError(f"now is the receiver's Unix time; got {now!r}")
    view = HeaderView(headers)
    payload = Body(body)
    signed = _VERIFIERS[config.scheme](config, view, payload, now)
    defaults = SCHEME_DEFAULTS[config.scheme]

    delivery_id = signed.delivery_id
    if delivery_id is None:
        configured: WebhookFieldConfig | None = getattr(config, "delivery_id", None)
        if configured is not None:
            delivery_id = _read(configured, view, payload, required=True)
        elif defaults.delivery_id is not None:
            delivery_id = _read(defaults.delivery_id, view, payload, required=False)
    event_type = None
    source = config.event_type or defaults.event_type
    if source is not None:
        event_type = _read(source, view, payload, required=False)
    return Verified(
        scheme=config.scheme,
        delivery_id=delivery_id or payload.sha256_id(),
        event_type=event_type,
        timestamp=signed.timestamp,
        headers=dict(view.read),
    )


def _read(
    source: WebhookFieldConfig, headers: HeaderView, body: Body, *, required: bool
) -> str | None:
    if source.header is not None:
        value = headers.get(source.header)
        if value is None:
            if required:
                raise missing_header(source.header)
            return None
        return delivery_token(value, source.header)
    assert source.path is not None  # WebhookFieldConfig holds exactly one of the two
    found = body.value_at(source.path)
    if found is None and required:
        raise rejected("malformed_body", f"the body has no short text or number at {source.path!r}")
    return found


def sign(
    config: WebhookSourceConfig,
    body: bytes,
    *,
    timestamp: int,
    delivery_id: str | None = None,
    event_type: str | None = None,
    secret_index: int = 0,
) -> dict[str, str]:
    """The headers a sender of `config.scheme` would send with `body`, signed with the
    source's secret number `secret_index` (the first by default); `verify` accepts them.

    `delivery_id` and `event_type` go in the headers the scheme (or `config`) reads them
    from; a scheme that signs an id gets one derived from the body and timestamp when none is
    given. Stripe and Standard Webhooks payloads carry their own `id`/`type` in the body.
    For tests, the benchmark and sandbox senders; a receiver never needs it.
    """
    key = config.signing_keys[secret_index]
    if delivery_id is None and _signs_id(config):
        digest = hashlib.sha256(str(timestamp).encode() + b"." + body).hexdigest()
        delivery_id = "msg_" + digest[:32]
    headers: dict[str, str]
    if isinstance(config, HmacWebhookConfig):
        headers = sign_hmac(config, body, key, timestamp=timestamp, delivery_id=delivery_id)
    elif config.scheme == "standard":
        headers = sign_standard(body, key, timestamp=timestamp, delivery_id=delivery_id or "")
    elif config.scheme == "stripe":
        headers = sign_stripe(body, key, timestamp=timestamp)
    elif config.scheme == "github":
        headers = sign_github(body, key)
    elif config.scheme == "shopify":
        headers = sign_shopify(body, key)
    else:
        headers = sign_slack(body, key, timestamp=timestamp)
    defaults = SCHEME_DEFAULTS[config.scheme]
    id_source: WebhookFieldConfig | None = getattr(config, "delivery_id", None)
    id_source = id_source or defaults.delivery_id
    if delivery_id is not None and id_source is not None and id_source.header is not None:
        headers[id_source.header] = delivery_id
    event_source = config.event_type or defaults.event_type
    if event_type is not None and event_source is not None and event_source.header is not None:
        headers[event_source.header] = event_type
    return headers


def _signs_id(config: WebhookSourceConfig) -> bool:
    if config.scheme == "standard":
        return True
    return isinstance(config, HmacWebhookConfig) and "id" in config.template[1::2]
