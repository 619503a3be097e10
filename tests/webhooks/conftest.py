"""Helpers for the webhook tests: sources built from YAML-shaped dicts, and signed inputs."""

from __future__ import annotations

from typing import Any

import pytest

from interlink.config import InterlinkConfig, WebhookSourceConfig
from interlink.errors import SignatureError
from interlink.webhooks import Verified, sign, verify

NOW = 1_700_000_000
"""The receiver's clock in every test; signatures are made at NOW unless a test says."""

STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""The Standard Webhooks reference library's test secret (24 bytes once decoded)."""
OTHER_STANDARD_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"  # base64("ABC...X")
TEXT_SECRET = "whsec_plain_text_secret_for_stripe"

BODY = b'{"id":"evt_123","type":"customer.updated","data":{"object":{"id":"cus_9"}}}'


def source(scheme: str, **options: Any) -> WebhookSourceConfig:
    """A validated `webhooks:` entry; the secret defaults to one that suits the scheme."""
    if "secret" not in options and "secrets" not in options:
        options["secret"] = STANDARD_SECRET if scheme == "standard" else TEXT_SECRET
    config = InterlinkConfig.model_validate({"webhooks": {"s": {"scheme": scheme, **options}}})
    return config.webhooks["s"]


# One source per scheme family, and the hmac variants that change what is parsed or signed.
SOURCES: dict[str, dict[str, Any]] = {
    "standard": {},
    "stripe": {},
    "github": {},
    "shopify": {},
    "slack": {},
    "hmac": {},
    "hmac_base64_sha512": {"algorithm": "sha512", "encoding": "base64"},
    "hmac_sha1_prefixed": {"algorithm": "sha1", "prefix": "sha1=", "header": "X-Hub-Signature"},
    "hmac_timestamped": {
        "timestamp_header": "X-Timestamp",
        "signed_content": "{timestamp}.{id}.{body}",
        "delivery_id": {"header": "X-Delivery-Id"},
        "api_key": "key-for-tests",
    },
}
TIMESTAMPED = {"standard", "stripe", "slack", "hmac_timestamped"}
"""Sources whose signature covers a timestamp."""
SIGNED_ID = {"standard": "webhook-id", "hmac_timestamped": "X-Delivery-Id"}
"""Sources whose signature covers the delivery id, with the header that carries it."""
TIMESTAMP_HEADER = {
    "standard": "webhook-timestamp",
    "slack": "X-Slack-Request-Timestamp",
    "hmac_timestamped": "X-Timestamp",
}


def named(name: str) -> WebhookSourceConfig:
    scheme = name.split("_", 1)[0]
    return source(scheme, **SOURCES[name])


def rejected(
    config: WebhookSourceConfig, headers: Any, body: bytes = BODY, now: float = NOW
) -> SignatureError:
    """Verify, expecting a refusal; return the error after checking its shape."""
    with pytest.raises(SignatureError) as info:
        verify(config, headers, body, now)
    error = info.value
    assert error.status in (400, 401)
    assert error.code == "INVALID_SIGNATURE"
    assert "\n" not in str(error)
    return error


def signed(
    config: WebhookSourceConfig, body: bytes = BODY, *, at: int = NOW, **kwargs: Any
) -> dict[str, str]:
    return sign(config, body, timestamp=at, **kwargs)


def accepted(config: WebhookSourceConfig, headers: Any, body: bytes = BODY) -> Verified:
    return verify(config, headers, body, NOW)


@pytest.fixture
def opened(tmp_path: Any) -> Any:
    """(config, store, queue) on a SQLite file of the test's own (tests/webhooks/inbox_rig.py)."""
    from tests.webhooks.inbox_rig import open_database

    config, store, queue = open_database(tmp_path)
    yield config, store, queue
    queue.close()
    store.close()
