"""Where the shop sends its webhooks and how it signs them, as the third parties do.

The sandbox plays someone else's system, so it signs with its own code, written from each
sender's published scheme, never with interlink's (which verifies them):

- `standard` (Standard Webhooks, Svix): `webhook-id`, `webhook-timestamp` and
  `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the
  base64-decoded part of a `whsec_...` secret.
- `hmac` (the guide's controller): `X-Signature: <hex HMAC-SHA256 of the body>`, keyed with
  the secret's UTF-8 bytes, with `X-Event-Type`, `X-Event-Id` and, given an `api_key`,
  `X-API-Key`.
- `stripe`: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">`, keyed with
  the whole secret text; the delivery id and event type are the body's `id` and `type`.
- `github`: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`,
  `X-GitHub-Delivery`, `X-GitHub-Event`.
- `shopify`: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>`,
  `X-Shopify-Webhook-Id`, `X-Shopify-Topic`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

__all__ = [
    "WEBHOOK_SCHEMES",
    "InvalidWebhookTargetError",
    "WebhookScheme",
    "WebhookTarget",
    "sign_delivery",
    "standard_key",
]

WebhookScheme = Literal["standard", "hmac", "stripe", "github", "shopify"]
WEBHOOK_SCHEMES: tuple[str, ...] = get_args(WebhookScheme)

_WHSEC = "whsec_"


def standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after `whsec_` (which may be
    left out, as may the padding). A ValueError, without the secret, if it is not that."""
    text = secret.strip().removeprefix(_WHSEC)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ValueError("a standard secret is whsec_ followed by base64 text")
    return key


def _pattern_problem(pattern: Any) -> str | None:
    if not isinstance(pattern, str) or not pattern.strip():
        return "each event is a non-empty string such as customer.updated or customer.*"
    if "*" in pattern.rstrip("*"):
        return f"{pattern!r}: '*' may only end a pattern (customer.*)"
    return None


class InvalidWebhookTargetError(ValueError):
    """A `WebhookTarget` that cannot be used; `problems` lists (field, issue) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {issue}" for name, issue in problems))
        self.problems = problems


@dataclass(frozen=True)
class WebhookTarget:
    """Where the shop posts its change events, signed how, and which of them.

    `events` are event types (`customer.updated`) or prefixes ending in `*` (`customer.*`);
    None sends every event. The secret (and `api_key`) never appear in a repr or in
    `describe()`.

    ```python
    WebhookTarget("http://127.0.0.1:8000/api/v1/webhooks/shop", secret="whsec_c2VjcmV0")
    ```
    """

    url: str
    secret: str = field(repr=False)
    scheme: WebhookScheme = "standard"
    events: tuple[str, ...] | None = None
    api_key: str | None = field(default=None, repr=False)
    """`hmac` only: also send this value in `X-API-Key`."""

    def __post_init__(self) -> None:
        if isinstance(self.events, list):  # from JSON; kept as a tuple, so it is frozen too
            object.__setattr__(self, "events", tuple(self.events))
        problems = self._problems()
        if problems:
            raise InvalidWebhookTargetError(problems)

    def _problems(self) -> list[tuple[str, str]]:
        # (field, issue) pairs; an issue never quotes the secret or the API key.
        found: list[tuple[str, str]] = []
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            found.append(("url", "an absolute http:// or https:// URL"))
        if self.scheme not in WEBHOOK_SCHEMES:
            found.append(("scheme", f"one of {', '.join(WEBHOOK_SCHEMES)}"))
        if not isinstance(self.secret, str) or not self.secret.strip():
            found.append(("secret", "a non-empty string"))
        elif self.scheme == "standard":
            try:
                standard_key(self.secret)
            except ValueError as error:
                found.append(("secret", str(error)))
        if self.events is not None and not isinstance(self.events, tuple):
            found.append(("events", "a list of event types such as customer.updated"))
        elif self.events is not None and not self.events:
            found.append(("events", "at least one event type (leave events out for all)"))
        elif self.events is not None:
            for pattern in self.events:
                problem = _pattern_problem(pattern)
                if problem is not None:
                    found.append(("events", problem))
                    break
        api_key = self.api_key
        if api_key is not None and (
            self.scheme != "hmac" or not isinstance(api_key, str) or not api_key.strip()
        ):
            found.append(("api_key", "a non-empty string, for the hmac scheme only"))
        return found

    def wants(self, event_type: str) -> bool:
        """Whether `events` lets `event_type` through."""
        if self.events is None:
            return True
        for pattern in self.events:
            if pattern.endswith("*"):
                if event_type.startswith(pattern.rstrip("*")):
                    return True
            elif event_type == pattern:
                return True
        return False

    def describe(self) -> dict[str, Any]:
        """The target as `GET /_webhooks` shows it: without the secret or the API key, and
        without a password in the URL."""
        parts = urlsplit(self.url)
        url = self.url
        if parts.password is not None:
            host = parts.netloc.rpartition("@")[2]
            url = parts._replace(netloc=f"{parts.username}:***@{host}").geturl()
        return {
            "url": url,
            "scheme": self.scheme,
            "events": list(self.events) if self.events is not None else None,
            "api_key": self.api_key is not None,
        }


def _digest(key: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()


def sign_delivery(
    target: WebhookTarget, body: bytes, *, delivery_id: str, event_type: str, timestamp: int
) -> dict[str, str]:
    """The headers of one delivery attempt of `body` to `target`.

    A retry is signed again with its own `timestamp` but keeps `delivery_id`, as real
    senders do, so that the receiver can tell it is the same delivery.
    """
    secret = target.secret.encode("utf-8")
    if target.scheme == "standard":
        signed = _digest(standard_key(target.secret), f"{delivery_id}.{timestamp}.".encode(), body)
        return {
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(signed).decode("ascii"),
        }
    if target.scheme == "stripe":
        signed = _digest(secret, f"{timestamp}.".encode(), body)
        return {"Stripe-Signature": f"t={timestamp},v1={signed.hex()}"}
    if target.scheme == "github":
        return {
            "X-Hub-Signature-256": "sha256=" + _digest(secret, body).hex(),
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Event": event_type,
        }
    if target.scheme == "shopify":
        return {
            "X-Shopify-Hmac-Sha256": base64.b64encode(_digest(secret, body)).decode("ascii"),
            "X-Shopify-Webhook-Id": delivery_id,
            "X-Shopify-Topic": event_type,
        }
    headers = {
        "X-Signature": _digest(secret, body).hex(),
        "X-Event-Type": event_type,
        "X-Event-Id": delivery_id,
    }
    if target.api_key is not None:
        headers["X-API-Key"] = target.api_key
    return headers
