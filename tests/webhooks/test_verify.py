"""`verify` case by case: tolerance, rotation, each refusal's reason and status, where the
delivery id and event type come from, and what is (not) read before the signature checks."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib

import orjson
import pytest
from starlette.datastructures import Headers

from interlink.errors import InterlinkError, SignatureError, WebhookError
from interlink.webhooks import REJECT_REASONS, Verified, sign, verify

from .conftest import (
    BODY,
    NOW,
    OTHER_STANDARD_SECRET,
    SOURCES,
    STANDARD_SECRET,
    TEXT_SECRET,
    TIMESTAMPED,
    accepted,
    named,
    rejected,
    signed,
    source,
)

# --- tolerance -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TIMESTAMPED))
def test_tolerance_is_300_seconds_in_both_directions(name):
    config = named(name)
    for skew in (-300, 0, 300):
        headers = signed(config, at=NOW + skew)
        assert accepted(config, headers).timestamp == NOW + skew
    for skew, where in ((-301, "in the future"), (301, "in the past"), (-86400, "in the future")):
        error = rejected(config, signed(config, at=NOW - skew))
        assert (error.reason, error.status) == ("timestamp_out_of_tolerance", 401)
        assert where in str(error)


@pytest.mark.parametrize("name", sorted(TIMESTAMPED))
def test_tolerance_is_configurable(name):
    scheme = name.split("_", 1)[0]
    config = source(scheme, **SOURCES[name], tolerance="10s")
    assert accepted(config, signed(config, at=NOW - 10)).timestamp == NOW - 10
    assert rejected(config, signed(config, at=NOW - 11)).reason == "timestamp_out_of_tolerance"
    assert rejected(config, signed(config, at=NOW + 11)).reason == "timestamp_out_of_tolerance"


def test_schemes_without_a_signed_timestamp_have_none():
    for name in ("github", "shopify", "hmac"):
        config = named(name)
        assert accepted(config, signed(config, at=0)).timestamp is None


# --- rotation ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_rotation_any_active_secret_matches(name):
    scheme = name.split("_", 1)[0]
    if scheme == "standard":
        pair, third = [OTHER_STANDARD_SECRET, STANDARD_SECRET], "whsec_" + "A" * 32
    else:
        pair, third = ["old-secret-0001", "new-secret-0002"], "third-secret-003"
    config = source(scheme, **SOURCES[name], secrets=pair)
    for index in (0, 1):
        assert accepted(config, signed(config, secret_index=index)).scheme == scheme
    stranger = source(scheme, **SOURCES[name], secret=third)
    error = rejected(config, signed(stranger))
    assert (error.reason, error.status) == ("signature_mismatch", 401)


def test_a_rotating_standard_sender_signs_with_both_and_we_hold_one():
    old = source("standard", secret=OTHER_STANDARD_SECRET)
    new = source("standard", secret=STANDARD_SECRET)
    a = signed(old, delivery_id="msg_1")
    b = signed(new, delivery_id="msg_1")
    headers = dict(a, **{"webhook-signature": f"{a['webhook-signature']} {b['webhook-signature']}"})
    assert accepted(new, headers).delivery_id == "msg_1"
    assert accepted(old, headers).delivery_id == "msg_1"


# --- refusals: reason and status -----------------------------------------------------


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_no_headers_at_all(name):
    error = rejected(named(name), {})
    expected = "api_key_mismatch" if name == "hmac_timestamped" else "missing_signature"
    assert (error.reason, error.status) == (expected, 401)


@pytest.mark.parametrize(
    ("scheme", "headers", "reason"),
    [
        ("standard", {"webhook-signature": "v1,AAAA"}, "missing_header"),
        ("standard", {"webhook-signature": "v1a,AAAA", "webhook-id": "m"}, "missing_header"),
        (
            "standard",
            {"webhook-signature": "v1a,AAAA", "webhook-id": "m", "webhook-timestamp": "1"},
            "missing_signature",
        ),
        (
            "standard",
            {"webhook-signature": "garbage", "webhook-id": "m", "webhook-timestamp": "1"},
            "malformed_header",
        ),
        (
            "standard",
            {"webhook-signature": "v1,@@@", "webhook-id": "m", "webhook-timestamp": "1"},
            "malformed_header",
        ),
        (
            "standard",
            {"webhook-signature": "v1,a,b", "webhook-id": "m", "webhook-timestamp": "1"},
            "malformed_header",
        ),
        (
            "standard",
            {"webhook-signature": "v1," + "A" * 44, "webhook-id": "m", "webhook-timestamp": "1.5"},
            "malformed_header",
        ),
        (
            "standard",
            {"webhook-signature": "v1,AAAA", "webhook-id": "a b", "webhook-timestamp": "1"},
            "malformed_header",
        ),
        ("stripe", {"Stripe-Signature": "v1=" + "0" * 64}, "malformed_header"),
        ("stripe", {"Stripe-Signature": "t=1700000000"}, "missing_signature"),
        ("stripe", {"Stripe-Signature": "t=1700000000,t=1700000000"}, "malformed_header"),
        ("stripe", {"Stripe-Signature": "t=1700000000,v1=zz"}, "malformed_header"),
        ("stripe", {"Stripe-Signature": "t=-1,v1=" + "0" * 64}, "malformed_header"),
        ("stripe", {"Stripe-Signature": "t=01700000000,v1=" + "0" * 64}, "malformed_header"),
        ("stripe", {"Stripe-Signature": "nonsense"}, "malformed_header"),
        ("github", {"X-Hub-Signature-256": "sha1=" + "0" * 40}, "malformed_header"),
        ("github", {"X-Hub-Signature-256": "0" * 64}, "malformed_header"),
        ("github", {"X-Hub-Signature-256": "sha256=" + "0" * 63}, "malformed_header"),
        ("github", {"X-Hub-Signature-256": "sha256=" + "0" * 64}, "signature_mismatch"),
        ("shopify", {"X-Shopify-Hmac-Sha256": "not base64!"}, "malformed_header"),
        ("shopify", {"X-Shopify-Hmac-Sha256": "AAAA"}, "malformed_header"),
        # Non-canonical base64: the same bytes as "A" * 43 + "=" in another spelling.
        ("shopify", {"X-Shopify-Hmac-Sha256": "A" * 42 + "B="}, "malformed_header"),
        ("shopify", {"X-Shopify-Hmac-Sha256": "A" * 43 + "="}, "signature_mismatch"),
        ("shopify", {"X-Shopify-Hmac-Sha256": "A" * 43}, "signature_mismatch"),  # unpadded
        ("slack", {"X-Slack-Signature": "v0=" + "0" * 64}, "missing_header"),
        (
            "slack",
            {"X-Slack-Signature": "v1=" + "0" * 64, "X-Slack-Request-Timestamp": "1700000000"},
            "malformed_header",
        ),
        ("hmac", {"X-Signature": "sha256=" + "0" * 64}, "malformed_header"),
    ],
)
def test_each_refusal_has_its_reason(scheme, headers, reason):
    error = rejected(source(scheme), headers)
    assert (error.reason, error.status) == (reason, REJECT_REASONS[reason])


def test_very_long_and_repeated_headers_are_refused_before_parsing():
    config = named("github")
    good = signed(config)
    error = rejected(config, {"X-Hub-Signature-256": "sha256=" + "0" * 100_000})
    assert error.reason == "malformed_header"
    many = " ".join(["v1," + "A" * 43 + "="] * 17)
    headers = {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": many}
    assert rejected(named("standard"), headers).reason == "malformed_header"
    # The same header twice, as raw ASGI pairs and as Starlette's Headers.
    value = good["X-Hub-Signature-256"].encode()
    raw = [(b"x-hub-signature-256", value), (b"x-hub-signature-256", value)]
    assert rejected(config, raw).reason == "malformed_header"
    assert rejected(config, Headers(raw=raw)).reason == "malformed_header"


def test_raw_asgi_pairs_and_starlette_headers_are_accepted():
    config = named("stripe")
    headers = signed(config)
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-type", b"application/json"))
    assert accepted(config, raw).delivery_id == "evt_123"
    assert accepted(config, Headers(raw=raw)).delivery_id == "evt_123"
    assert accepted(config, {k.upper(): v for k, v in headers.items()}).delivery_id == "evt_123"


def test_api_key_is_checked_in_constant_time_and_never_kept():
    config = named("hmac_timestamped")
    headers = signed(config, delivery_id="d-1")
    verified = accepted(config, headers)
    assert verified.delivery_id == "d-1"
    assert "x-api-key" not in verified.headers
    for value in ("wrong", "", "key-for-tests ", "key-for-tests-and-more", "k\u00e9y"):
        bad = dict(headers, **{"X-API-Key": value})
        if value.strip() == "key-for-tests":
            continue  # surrounding spaces are not part of a header value (RFC 9110 5.5)
        error = rejected(config, bad)
        assert (error.reason, error.status) == ("api_key_mismatch", 401)
        assert "key-for-tests" not in str(error) and "key-for-tests" not in repr(error)


# --- delivery id and event type ------------------------------------------------------


def test_delivery_id_and_event_type_per_scheme():
    body = BODY
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    cases = {
        "standard": ("msg_7", "customer.updated"),
        "stripe": ("evt_123", "customer.updated"),
        "github": ("gh-uuid", "push"),
        "shopify": ("shop-uuid", "orders/create"),
        "slack": (digest, None),
        "hmac": (digest, None),
    }
    ids = {"standard": "msg_7", "github": "gh-uuid", "shopify": "shop-uuid"}
    events = {"github": "push", "shopify": "orders/create"}
    for scheme, expected in cases.items():
        config = source(scheme)
        headers = signed(config, delivery_id=ids.get(scheme), event_type=events.get(scheme))
        verified = accepted(config, headers, body)
        assert (verified.delivery_id, verified.event_type) == expected, scheme
        assert verified.scheme == scheme


def test_github_and_shopify_without_an_id_header_fall_back_to_the_body_digest():
    for scheme in ("github", "shopify"):
        config = source(scheme)
        verified = accepted(config, signed(config))
        assert verified.delivery_id == "sha256:" + hashlib.sha256(BODY).hexdigest()
        assert verified.event_type is None


def test_configured_event_type_overrides_the_scheme():
    config = source("github", event_type={"path": "data.object.id"})
    headers = signed(config, event_type="push")
    assert accepted(config, headers).event_type == "cus_9"
    config = source("stripe", event_type={"header": "X-Event-Type"})
    headers = dict(signed(config), **{"X-Event-Type": "order.paid"})
    assert accepted(config, headers).event_type == "order.paid"
    assert accepted(config, signed(config)).event_type is None  # header absent
    bad = dict(signed(config), **{"X-Event-Type": "two words"})
    assert rejected(config, bad).reason == "malformed_header"


@pytest.mark.parametrize(
    ("body", "path", "expected"),
    [
        (b'{"a":{"b":"x"}}', "a.b", "x"),
        (b'{"a":[{"b":"x"},{"b":"y"}]}', "a.1.b", "y"),
        (b'{"a":[{"b":"x"}]}', "a.5.b", None),
        (b'{"a":42}', "a", "42"),
        (b'{"a":true}', "a", None),
        (b'{"a":1.5}', "a", None),
        (b'{"a":{"b":1}}', "a", None),
        (b'{"a":""}', "a", None),
        (b'{"a":"' + b"x" * 300 + b'"}', "a", None),
        (b'{"a":"line\\nbreak"}', "a", None),
        (b"not json", "a", None),
        (b"\xff\xfe", "a", None),
        (b"[1,2]", "0", "1"),
        (b"", "a", None),
    ],
)
def test_event_type_from_a_body_path(body, path, expected):
    config = source("hmac", event_type={"path": path})
    assert accepted(config, signed(config, body), body).event_type == expected


def test_configured_delivery_id_is_required():
    config = source("hmac", delivery_id={"header": "X-Delivery-Id"})
    headers = signed(config, delivery_id="d-9")
    assert accepted(config, headers).delivery_id == "d-9"
    headers.pop("X-Delivery-Id")
    assert rejected(config, headers).reason == "missing_header"
    config = source("slack", delivery_id={"path": "event_id"})
    assert accepted(config, signed(config, b'{"event_id":"Ev1"}'), b'{"event_id":"Ev1"}')
    error = rejected(config, signed(config, b'{"type":"x"}'), b'{"type":"x"}')
    assert (error.reason, error.status) == ("malformed_body", 400)


def test_verified_headers_are_the_ones_read():
    config = named("standard")
    headers = dict(signed(config, delivery_id="msg_1"), Cookie="session=1")
    verified = accepted(config, headers)
    assert set(verified.headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        verified.delivery_id = "x"  # type: ignore[misc]


# --- what is read, and when ----------------------------------------------------------


def test_the_body_is_parsed_only_after_the_signature_checks(monkeypatch):
    def parse(_: bytes) -> object:
        raise AssertionError("the body was parsed")

    monkeypatch.setattr(orjson, "loads", parse)  # interlink.webhooks reads JSON with orjson
    config = named("stripe")
    headers = signed(config, BODY + b" ")
    assert rejected(config, headers, BODY).reason == "signature_mismatch"
    github = named("github")
    assert accepted(github, signed(github, event_type="push")).event_type == "push"


def test_the_body_must_be_bytes_and_now_a_finite_time():
    with pytest.raises(TypeError):
        verify(named("github"), {}, "text", NOW)  # type: ignore[arg-type]
    for now in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            verify(named("stripe"), signed(named("stripe")), BODY, now)


def test_verification_works_on_non_utf8_bodies():
    body = b"\xff\x00\xfe binary"
    for name in SOURCES:
        config = named(name)
        assert accepted(config, signed(config, body, delivery_id="m-1"), body).scheme


def test_sign_uses_the_chosen_secret():
    config = source("github", secrets=["one-one-one", "two-two-two"])
    assert sign(config, b"x", timestamp=0) != sign(config, b"x", timestamp=0, secret_index=1)


# --- the error and the package surface -----------------------------------------------


def test_signature_error_shape_and_secrets():
    error = SignatureError("the signature does not match", reason="signature_mismatch")
    assert isinstance(error, WebhookError) and isinstance(error, InterlinkError)
    assert (error.code, error.status, error.exit_code) == ("INVALID_SIGNATURE", 401, 1)
    assert repr(error) == (
        "SignatureError(message='the signature does not match', "
        "reason='signature_mismatch', status=401)"
    )
    with pytest.raises(ValueError):
        SignatureError("x", reason="y", status=500)
    # No refusal quotes a secret or the header values it refused.
    for name in SOURCES:
        config = named(name)
        headers = {h: v + "!" for h, v in signed(config).items()}
        error = rejected(config, headers)
        for secret in (TEXT_SECRET, STANDARD_SECRET, "key-for-tests"):
            assert secret not in str(error)
        for value in headers.values():
            assert len(value) < 12 or value not in str(error)


def test_config_repr_never_shows_secrets():
    config = named("hmac_timestamped")
    assert TEXT_SECRET not in repr(config) and "key-for-tests" not in repr(config)
    assert TEXT_SECRET not in str(config.model_dump())


def test_public_surface():
    module = importlib.import_module("interlink.webhooks")
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), "a name is exported twice"
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not isinstance(value, type(importlib))
        and getattr(value, "__module__", "interlink.webhooks").startswith("interlink")
    }
    assert public <= set(exported)
    for attr in exported:
        assert hasattr(module, attr)
    assert Verified.__module__.startswith("interlink.webhooks")


# --- the receiver's fast paths ---------------------------------------------------------


def test_raw_pairs_differing_only_in_case_are_one_header_twice():
    """ASGI pairs are decoded in one pass; two names that differ only in case are the
    same header twice, refused as such, not one shadowing the other."""
    config = named("github")
    value = signed(config)["X-Hub-Signature-256"].encode()
    raw = [(b"X-Hub-Signature-256", value), (b"x-hub-signature-256", value)]
    assert rejected(config, raw).reason == "malformed_header"
    # Pairs of text in a list take the careful path and read the same.
    text = [(k, v) for k, v in signed(config).items()]
    assert accepted(config, text).delivery_id == accepted(config, signed(config)).delivery_id


@pytest.mark.parametrize("name", sorted(SOURCES))
@pytest.mark.parametrize("size", [1, 64 * 1024 - 200, 64 * 1024, 300 * 1024])
def test_bodies_short_and_long_verify_and_one_changed_byte_fails(name, size):
    """Short bodies are digested in one call, long ones (64 KiB and up) fed in parts:
    both give the digest the sender's library gives, and one changed byte fails."""
    config = named(name)
    body = orjson.dumps({"id": "evt_big", "type": "t", "pad": "x" * size})
    headers = signed(config, body)
    assert accepted(config, headers, body).scheme == config.scheme
    changed = body[:-3] + bytes([body[-3] ^ 1]) + body[-2:]
    assert rejected(config, headers, changed).reason == "signature_mismatch"
