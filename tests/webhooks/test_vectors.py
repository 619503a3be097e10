"""Known-answer vectors: a signature published by the sender (or computed here by hand with
`hmac`, following the sender's docs) is accepted, and `sign` reproduces it."""

from __future__ import annotations

import base64
import hashlib
import hmac

from interlink.webhooks import sign, verify

from .conftest import TEXT_SECRET, accepted, rejected, source

# GitHub, "Validating webhook deliveries": testing the webhook payload validation.
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_HEX = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# The Standard Webhooks reference library's `test_sign_function`.
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STANDARD_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STANDARD_TS = 1614265330
STANDARD_BODY = b'{"test": 2432232314}'
STANDARD_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

# Slack, "Verifying requests from Slack": the documented slash-command example.
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TS = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook"
    b"-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F39770"
    b"0885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10"
    b"d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_github_documented_vector():
    config = source("github", secret=GITHUB_SECRET)
    headers = {
        "X-Hub-Signature-256": f"sha256={GITHUB_HEX}",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-GitHub-Event": "push",
    }
    verified = verify(config, headers, GITHUB_BODY, now=0)
    assert verified.delivery_id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert verified.event_type == "push"
    assert verified.timestamp is None
    assert sign(config, GITHUB_BODY, timestamp=0)["X-Hub-Signature-256"] == f"sha256={GITHUB_HEX}"
    # Upper-case hex is the same digest.
    headers["X-Hub-Signature-256"] = f"sha256={GITHUB_HEX.upper()}"
    assert verify(config, headers, GITHUB_BODY, now=0).event_type == "push"
    error = rejected(config, headers, GITHUB_BODY + b"\n")
    assert (error.reason, error.status) == ("signature_mismatch", 401)


def test_standard_webhooks_reference_vector():
    config = source("standard", secret=STANDARD_SECRET)
    headers = {
        "webhook-id": STANDARD_ID,
        "webhook-timestamp": str(STANDARD_TS),
        "webhook-signature": STANDARD_SIGNATURE,
    }
    verified = verify(config, headers, STANDARD_BODY, now=STANDARD_TS + 1)
    assert verified.delivery_id == STANDARD_ID
    assert verified.timestamp == STANDARD_TS
    assert verified.event_type is None  # the body has no "type"
    ours = sign(config, STANDARD_BODY, timestamp=STANDARD_TS, delivery_id=STANDARD_ID)
    assert ours == headers
    # The secret without its whsec_ prefix is the same key.
    bare = source("standard", secret=STANDARD_SECRET.removeprefix("whsec_"))
    assert verify(bare, headers, STANDARD_BODY, now=STANDARD_TS).delivery_id == STANDARD_ID


def test_standard_webhooks_reference_multi_signature_header():
    """The reference library's `test_multi_sig_payload_is_valid`: wrong v1 and unknown v2
    entries around the right one."""
    config = source("standard", secret=STANDARD_SECRET)
    wrong = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    header = f"v1,{wrong} v2,{wrong} {STANDARD_SIGNATURE} v1,{wrong}"
    headers = {"webhook-id": STANDARD_ID, "webhook-timestamp": str(STANDARD_TS)}
    headers["webhook-signature"] = header
    assert verify(config, headers, STANDARD_BODY, now=STANDARD_TS).delivery_id == STANDARD_ID
    # ... and the reference's invalid signature (one character off) is refused.
    headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
    error = rejected(config, headers, STANDARD_BODY, now=STANDARD_TS)
    assert error.reason == "signature_mismatch"


def test_slack_documented_vector():
    config = source("slack", secret=SLACK_SECRET)
    headers = {"X-Slack-Signature": SLACK_SIGNATURE, "X-Slack-Request-Timestamp": str(SLACK_TS)}
    verified = verify(config, headers, SLACK_BODY, now=SLACK_TS + 60)
    assert verified.timestamp == SLACK_TS
    assert verified.delivery_id == "sha256:" + hashlib.sha256(SLACK_BODY).hexdigest()
    assert sign(config, SLACK_BODY, timestamp=SLACK_TS) == headers


def test_stripe_computed_by_hand():
    """stripe-python: HMAC-SHA256 keyed with the whole whsec_ text over "{t}.{body}", hex."""
    body = b'{"id":"evt_1","object":"event","type":"invoice.paid"}'
    t = 1_700_000_000
    digest = hmac.new(TEXT_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    config = source("stripe", secret=TEXT_SECRET)
    header = {"Stripe-Signature": f"t={t},v1={digest}"}
    verified = verify(config, header, body, now=t)
    assert (verified.delivery_id, verified.event_type, verified.timestamp) == (
        "evt_1",
        "invoice.paid",
        t,
    )
    assert sign(config, body, timestamp=t) == header
    # Extra schemes (v0, test mode) are skipped, as stripe-python does.
    header = {"Stripe-Signature": f"t={t},v0={'0' * 64},v1={digest}"}
    assert verify(config, header, body, now=t).delivery_id == "evt_1"


def test_shopify_computed_by_hand():
    """shopify.dev: base64 of HMAC-SHA256 of the raw body, keyed with the client secret."""
    body = b'{"id":820982911946154508,"email":"jon@example.com"}'
    digest = base64.b64encode(hmac.new(b"shpss_client", body, hashlib.sha256).digest()).decode()
    config = source("shopify", secret="shpss_client")
    headers = {
        "X-Shopify-Hmac-Sha256": digest,
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Topic": "orders/create",
    }
    verified = verify(config, headers, body, now=0)
    assert verified.delivery_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert verified.event_type == "orders/create"
    assert sign(config, body, timestamp=0)["X-Shopify-Hmac-Sha256"] == digest


def test_hmac_guide_controller_computed_by_hand():
    """The guide's controller: X-Signature = hex HMAC-SHA256 of the body, plus X-API-Key and
    X-Event-Type."""
    body = b'{"event_id":"e-77","model":"res.partner","record_id":42}'
    digest = hmac.new(b"odoo-shared-secret", body, hashlib.sha256).hexdigest()
    config = source(
        "hmac",
        secret="odoo-shared-secret",
        api_key="odoo-api-key",
        event_type={"header": "X-Event-Type"},
        delivery_id={"path": "event_id"},
    )
    headers = {
        "X-Signature": digest,
        "X-API-Key": "odoo-api-key",
        "X-Event-Type": "partner.updated",
    }
    verified = accepted(config, headers, body)
    assert (verified.delivery_id, verified.event_type) == ("e-77", "partner.updated")
    assert "x-api-key" not in verified.headers
    assert verified.headers == {"x-signature": digest, "x-event-type": "partner.updated"}


def test_hmac_templates_computed_by_hand():
    body = b"payload"
    secret = b"s3cret-s3cret"
    cases = [
        ({"algorithm": "sha1", "prefix": "sha1="}, "sha1", b"payload", "hex", "sha1="),
        ({"algorithm": "sha512", "encoding": "base64"}, "sha512", b"payload", "base64", ""),
        (
            {"timestamp_header": "X-Ts"},  # default template {timestamp}.{body}
            "sha256",
            b"1700000000.payload",
            "hex",
            "",
        ),
        (
            {"timestamp_header": "X-Ts", "signed_content": "v1:{timestamp}:{body}"},
            "sha256",
            b"v1:1700000000:payload",
            "hex",
            "",
        ),
    ]
    for options, algorithm, content, encoding, prefix in cases:
        digest = hmac.new(secret, content, algorithm).digest()
        text = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
        config = source("hmac", secret=secret.decode(), **options)
        headers = {"X-Signature": prefix + text, "X-Ts": "1700000000"}
        assert accepted(config, headers, body).delivery_id.startswith("sha256:"), options
