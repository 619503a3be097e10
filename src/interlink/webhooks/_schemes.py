"""One verifier and one signer per signature scheme, over raw body bytes and headers.

A verifier checks the signature (and the signed timestamp, where the scheme has one) and
returns what the scheme itself signed: the timestamp and, for Standard Webhooks and an
`hmac` template with `{id}`, the delivery id. The delivery id and event type the scheme
carries unsigned (GitHub's headers, Stripe's body) are read afterwards, in `_signature`.

A signer builds the headers a sender would send, for tests, the benchmark and replays.
"""

from __future__ import annotations

import base64
import hashlib
from typing import NamedTuple

from pydantic import SecretStr

from interlink.config import (
    GitHubWebhookConfig,
    HmacWebhookConfig,
    ShopifyWebhookConfig,
    SlackWebhookConfig,
    StandardWebhookConfig,
    StripeWebhookConfig,
)

from ._inputs import (
    MAX_SIGNATURES,
    Body,
    HeaderView,
    any_match,
    check_tolerance,
    decode_base64,
    decode_hex,
    delivery_token,
    hmac_digests,
    malformed,
    parse_timestamp,
    rejected,
)

__all__ = [
    "Signed",
    "sign_github",
    "sign_hmac",
    "sign_shopify",
    "sign_slack",
    "sign_standard",
    "sign_stripe",
    "verify_github",
    "verify_hmac",
    "verify_shopify",
    "verify_slack",
    "verify_standard",
    "verify_stripe",
]

_SHA256 = 32
_DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha512": 64}


class Signed(NamedTuple):
    """What a verifier found signed besides the body."""

    timestamp: int | None = None
    delivery_id: str | None = None


def _checked(
    keys: tuple[bytes, ...], algorithm: str, parts: list[bytes], given: list[bytes]
) -> None:
    if not any_match(hmac_digests(keys, algorithm, parts), given):
        raise rejected("signature_mismatch", "the signature does not match any active secret")


def _unsigned(header: str) -> Exception:
    return rejected("missing_signature", f"the {header} header is missing")


# --- Standard Webhooks (and Svix) ------------------------------------------------------
# webhook-signature: "v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>", several
# space-separated while a secret is rotated; other versions (v1a is ed25519) are skipped.


def verify_standard(
    config: StandardWebhookConfig, headers: HeaderView, body: Body, now: float
) -> Signed:
    prefix = "webhook"
    if not any(headers.get(f"webhook-{part}") for part in ("id", "timestamp", "signature")):
        prefix = "svix"  # Svix's own header names for the same scheme
    signature = headers.get(f"{prefix}-signature")
    if signature is None:
        raise _unsigned(f"{prefix}-signature")
    delivery_id = delivery_token(headers.require(f"{prefix}-id"), f"{prefix}-id")
    timestamp = parse_timestamp(headers.require(f"{prefix}-timestamp"), f"{prefix}-timestamp")
    entries = signature.split()
    if len(entries) > MAX_SIGNATURES:
        raise malformed(f"the {prefix}-signature header has more than {MAX_SIGNATURES} entries")
    given = []
    for entry in entries:
        version, comma, value = entry.partition(",")
        if not comma or not version:
            raise malformed(f"the {prefix}-signature header is not 'v1,<base64>' entries")
        if version == "v1":
            given.append(decode_base64(value, _SHA256, f"{prefix}-signature"))
    if not given:
        raise rejected("missing_signature", f"the {prefix}-signature header has no v1 signature")
    check_tolerance(timestamp, now, config.tolerance)
    signed = f"{delivery_id}.{timestamp}.".encode("ascii")
    _checked(config.signing_keys, "sha256", [signed, body.raw], given)
    return Signed(timestamp, delivery_id)


def sign_standard(body: bytes, key: bytes, *, timestamp: int, delivery_id: str) -> dict[str, str]:
    digest = hmac_digests([key], "sha256", [f"{delivery_id}.{timestamp}.".encode(), body])[0]
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }


# --- Stripe ----------------------------------------------------------------------------
# Stripe-Signature: "t=<unix>,v1=<hex HMAC-SHA256 of '{t}.{body}'>[,v1=...]", keyed with the
# whole "whsec_..." text (stripe-python `_webhook.py`). Other schemes (v0) are skipped.


def verify_stripe(
    config: StripeWebhookConfig, headers: HeaderView, body: Body, now: float
) -> Signed:
    header = headers.get("Stripe-Signature")
    if header is None:
        raise _unsigned("Stripe-Signature")
    items = header.split(",")
    if len(items) > MAX_SIGNATURES:
        raise malformed(f"the Stripe-Signature header has more than {MAX_SIGNATURES} items")
    timestamp: int | None = None
    given = []
    for item in items:
        name, equals, value = item.strip().partition("=")
        if not equals or not name:
            raise malformed("the Stripe-Signature header is not 't=...,v1=...' items")
        if name == "t":
            if timestamp is not None:
                raise malformed("the Stripe-Signature header has more than one t=")
            timestamp = parse_timestamp(value, "Stripe-Signature")
        elif name == "v1":
            given.append(decode_hex(value, _SHA256, "Stripe-Signature"))
    if timestamp is None:
        raise malformed("the Stripe-Signature header has no t= timestamp")
    if not given:
        raise rejected("missing_signature", "the Stripe-Signature header has no v1 signature")
    check_tolerance(timestamp, now, config.tolerance)
    _checked(config.signing_keys, "sha256", [f"{timestamp}.".encode("ascii"), body.raw], given)
    return Signed(timestamp)


def sign_stripe(body: bytes, key: bytes, *, timestamp: int) -> dict[str, str]:
    digest = hmac_digests([key], "sha256", [f"{timestamp}.".encode(), body])[0]
    return {"Stripe-Signature": f"t={timestamp},v1={digest.hex()}"}


# --- GitHub ----------------------------------------------------------------------------
# X-Hub-Signature-256: "sha256=<hex HMAC-SHA256 of the body>". Nothing else is signed.


def verify_github(
    config: GitHubWebhookConfig, headers: HeaderView, body: Body, now: float
) -> Signed:
    header = headers.get("X-Hub-Signature-256")
    if header is None:
        raise _unsigned("X-Hub-Signature-256")
    algorithm, equals, value = header.partition("=")
    if algorithm != "sha256" or not equals:
        raise malformed("the X-Hub-Signature-256 header is not 'sha256=<hex>'")
    given = decode_hex(value, _SHA256, "X-Hub-Signature-256")
    _checked(config.signing_keys, "sha256", [body.raw], [given])
    return Signed()


def sign_github(body: bytes, key: bytes) -> dict[str, str]:
    digest = hmac_digests([key], "sha256", [body])[0]
    return {"X-Hub-Signature-256": "sha256=" + digest.hex()}


# --- Shopify ---------------------------------------------------------------------------
# X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the body, keyed with the app's client secret.


def verify_shopify(
    config: ShopifyWebhookConfig, headers: HeaderView, body: Body, now: float
) -> Signed:
    header = headers.get("X-Shopify-Hmac-Sha256")
    if header is None:
        raise _unsigned("X-Shopify-Hmac-Sha256")
    given = decode_base64(header, _SHA256, "X-Shopify-Hmac-Sha256")
    _checked(config.signing_keys, "sha256", [body.raw], [given])
    return Signed()


def sign_shopify(body: bytes, key: bytes) -> dict[str, str]:
    digest = hmac_digests([key], "sha256", [body])[0]
    return {"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode("ascii")}


# --- Slack -----------------------------------------------------------------------------
# X-Slack-Signature: "v0=<hex HMAC-SHA256 of 'v0:{timestamp}:{body}'>", with the timestamp in
# X-Slack-Request-Timestamp (slack_sdk `SignatureVerifier`).


def verify_slack(config: SlackWebhookConfig, headers: HeaderView, body: Body, now: float) -> Signed:
    header = headers.get("X-Slack-Signature")
    if header is None:
        raise _unsigned("X-Slack-Signature")
    raw_timestamp = headers.require("X-Slack-Request-Timestamp")
    timestamp = parse_timestamp(raw_timestamp, "X-Slack-Request-Timestamp")
    version, equals, value = header.partition("=")
    if version != "v0" or not equals:
        raise malformed("the X-Slack-Signature header is not 'v0=<hex>'")
    given = decode_hex(value, _SHA256, "X-Slack-Signature")
    check_tolerance(timestamp, now, config.tolerance)
    _checked(
        config.signing_keys, "sha256", [f"v0:{raw_timestamp}:".encode("ascii"), body.raw], [given]
    )
    return Signed(timestamp)


def sign_slack(body: bytes, key: bytes, *, timestamp: int) -> dict[str, str]:
    digest = hmac_digests([key], "sha256", [f"v0:{timestamp}:".encode(), body])[0]
    return {"X-Slack-Signature": "v0=" + digest.hex(), "X-Slack-Request-Timestamp": str(timestamp)}


# --- generic HMAC ----------------------------------------------------------------------
# <header>: "<prefix><hex or base64 HMAC of signed_content>", signed_content a template of
# {body}, {timestamp} (from timestamp_header) and {id} (from delivery_id.header); optionally
# an API key header too, compared in constant time.


def verify_hmac(config: HmacWebhookConfig, headers: HeaderView, body: Body, now: float) -> Signed:
    if config.api_key is not None:
        _check_api_key(config.api_key_header, config.api_key, headers)
    header = headers.get(config.header)
    if header is None:
        raise _unsigned(config.header)
    if not header.startswith(config.prefix):
        raise malformed(f"the {config.header} header does not start with {config.prefix!r}")
    value = header[len(config.prefix) :]
    size = _DIGEST_SIZES[config.algorithm]
    if config.encoding == "hex":
        given = decode_hex(value, size, config.header)
    else:
        given = decode_base64(value, size, config.header)
    timestamp: int | None = None
    raw_timestamp = ""
    if config.timestamp_header is not None:
        raw_timestamp = headers.require(config.timestamp_header)
        timestamp = parse_timestamp(raw_timestamp, config.timestamp_header)
    delivery_id: str | None = None
    signs_id = "id" in config.template[1::2]
    if signs_id and config.delivery_id is not None and config.delivery_id.header is not None:
        name = config.delivery_id.header
        delivery_id = delivery_token(headers.require(name), name)
    if timestamp is not None:
        check_tolerance(timestamp, now, config.tolerance)
    parts = _fill(config.template, body.raw, raw_timestamp, delivery_id or "")
    _checked(config.signing_keys, config.algorithm, parts, [given])
    return Signed(timestamp, delivery_id)


def _check_api_key(name: str, api_key: SecretStr, headers: HeaderView) -> None:
    value = headers.get(name)
    headers.forget(name)
    if value is None:
        raise rejected("api_key_mismatch", f"the {name} header is missing")
    expected = api_key.get_secret_value().encode("utf-8")
    try:
        given = value.encode("latin-1")  # the bytes that were sent (ASGI reads latin-1)
    except UnicodeEncodeError:
        given = value.encode("utf-8")
    # Digests first: compare_digest takes longer for longer inputs, hashes are all 32 bytes.
    if not any_match([hashlib.sha256(expected).digest()], [hashlib.sha256(given).digest()]):
        raise rejected("api_key_mismatch", f"the {name} header does not match")


def _fill(template: tuple[str, ...], body: bytes, timestamp: str, delivery_id: str) -> list[bytes]:
    values = {"timestamp": timestamp.encode("ascii"), "id": delivery_id.encode("ascii")}
    parts = []
    for index, piece in enumerate(template):
        if index % 2 == 0:
            if piece:
                parts.append(piece.encode("utf-8"))
        else:
            parts.append(body if piece == "body" else values[piece])
    return parts


def sign_hmac(
    config: HmacWebhookConfig,
    body: bytes,
    key: bytes,
    *,
    timestamp: int,
    delivery_id: str | None,
) -> dict[str, str]:
    raw_timestamp = str(timestamp)
    parts = _fill(config.template, body, raw_timestamp, delivery_id or "")
    digest = hmac_digests([key], config.algorithm, parts)[0]
    if config.encoding == "hex":
        text = digest.hex()
    else:
        text = base64.b64encode(digest).decode("ascii")
    headers = {config.header: config.prefix + text}
    if config.timestamp_header is not None:
        headers[config.timestamp_header] = raw_timestamp
    if config.api_key is not None:
        headers[config.api_key_header] = config.api_key.get_secret_value()
    return headers
