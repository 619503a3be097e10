"""Properties: any single-byte change to what is signed fails verification, and no input
whatsoever makes `verify` raise anything but a SignatureError with status 400 or 401."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from interlink.errors import SignatureError
from interlink.webhooks import REJECT_REASONS, sign, verify

from .conftest import NOW, SIGNED_ID, SOURCES, TIMESTAMP_HEADER, TIMESTAMPED, named

CONFIGS = {name: named(name) for name in SOURCES}
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _signed(name: str, body: bytes, delivery_id: str = "msg_0123456789") -> dict[str, str]:
    headers = sign(CONFIGS[name], body, timestamp=NOW, delivery_id=delivery_id)
    assert verify(CONFIGS[name], headers, body, NOW)  # the untouched delivery is accepted
    return headers


def _refused(name: str, headers: dict[str, str], body: bytes) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        verify(CONFIGS[name], headers, body, NOW)
    assert info.value.status == REJECT_REASONS[info.value.reason]
    return info.value


def _change(text: str, index: int, char: str) -> str:
    index %= len(text)
    if text[index] == char:
        char = "0" if char != "0" else "1"
    return text[:index] + char + text[index + 1 :]


@pytest.mark.parametrize("name", sorted(SOURCES))
@FAST
@given(body=st.binary(min_size=1, max_size=300), data=st.data())
def test_any_single_byte_change_to_the_body_fails(name, body, data):
    headers = _signed(name, body)
    index = data.draw(st.integers(0, len(body) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]))
    tampered = body[:index] + bytes([byte]) + body[index + 1 :]
    assert _refused(name, headers, tampered).reason == "signature_mismatch"


@pytest.mark.parametrize("name", sorted(TIMESTAMPED))
@FAST
@given(index=st.integers(0, 100), char=st.characters(codec="ascii"))
def test_any_single_byte_change_to_the_timestamp_fails(name, index, char):
    body = b'{"type":"x"}'
    headers = _signed(name, body)
    if name == "stripe":
        value = headers["Stripe-Signature"]
        t_end = value.index(",")
        changed = _change(value[2:t_end], index, char)
        headers["Stripe-Signature"] = "t=" + changed + value[t_end:]
    else:
        header = TIMESTAMP_HEADER[name]
        headers[header] = _change(headers[header], index, char)
    _refused(name, headers, body)


@pytest.mark.parametrize("name", sorted(SIGNED_ID))
@FAST
@given(index=st.integers(0, 100), char=st.characters(codec="ascii"))
def test_any_single_byte_change_to_the_delivery_id_fails(name, index, char):
    body = b'{"type":"x"}'
    headers = _signed(name, body)
    header = SIGNED_ID[name]
    headers[header] = _change(headers[header], index, char)
    _refused(name, headers, body)


# --- garbage in, SignatureError out --------------------------------------------------

_HEADER_NAMES = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "Stripe-Signature",
    "X-Hub-Signature-256",
    "X-GitHub-Delivery",
    "X-GitHub-Event",
    "X-Shopify-Hmac-Sha256",
    "X-Shopify-Webhook-Id",
    "X-Shopify-Topic",
    "X-Slack-Signature",
    "X-Slack-Request-Timestamp",
    "X-Signature",
    "X-Hub-Signature",
    "X-Timestamp",
    "X-Delivery-Id",
    "X-API-Key",
    "X-Event-Type",
]
_B64 = string.ascii_letters + string.digits + "+/="
_PREFIXES = ["", "v1,", "v0=", "v1=", "t=", "sha256=", "sha1=", "v2,", "v1a,", ",", "=", " "]


def _long(piece: str, times: int) -> str:
    return piece * times


garbage_values = st.one_of(
    st.text(max_size=100),
    st.just(""),
    st.text(alphabet=_B64, max_size=100),
    st.text(alphabet=string.hexdigits, max_size=140),
    st.builds(lambda p, v: p + v, st.sampled_from(_PREFIXES), st.text(alphabet=_B64, max_size=90)),
    st.builds(
        lambda p, v: p + v,
        st.sampled_from(_PREFIXES),
        st.text(alphabet=string.hexdigits, max_size=130),
    ),
    st.builds(
        _long,
        st.sampled_from(["a", "v1,", "t=1,", "=", "9", " ", "\u00e9"]),
        st.integers(0, 20_000),
    ),
    st.builds(
        lambda t, s: f"t={t},v1={s}",
        st.text(max_size=12),
        st.text(alphabet=string.hexdigits, max_size=70),
    ),
    st.integers(-10, 10**13).map(str),
)
garbage_headers = st.dictionaries(
    st.one_of(st.sampled_from(_HEADER_NAMES), st.text(min_size=1, max_size=20)),
    garbage_values,
    max_size=8,
)


@pytest.mark.parametrize("name", sorted(SOURCES))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=garbage_headers, body=st.binary(max_size=200))
def test_garbage_headers_always_give_a_signature_error(name, headers, body):
    _refused(name, headers, body)


@pytest.mark.parametrize("name", sorted(SOURCES))
@settings(max_examples=150, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from([n.lower().encode() for n in _HEADER_NAMES]), st.binary(max_size=20)
            ),
            st.binary(max_size=120),
        ),
        max_size=8,
    ),
    body=st.binary(max_size=200),
)
def test_garbage_raw_asgi_headers_always_give_a_signature_error(name, pairs, body):
    _refused(name, pairs, body)


# Headers a sender sends that no signature covers: a receiver cannot hold them to anything.
_UNSIGNED = {"x-github-delivery", "x-github-event", "x-shopify-webhook-id", "x-shopify-topic"}


@pytest.mark.parametrize("name", sorted(SOURCES))
@FAST
@given(data=st.data())
def test_mangled_valid_headers_give_a_signature_error(name, data):
    """Start from a valid delivery and break one of its checked headers: drop it, empty it,
    cut it, extend it, put another prefix on it or make it very long."""
    body = b'{"id":"evt_1","type":"t"}'
    headers = _signed(name, body)
    header = data.draw(st.sampled_from(sorted(h for h in headers if h.lower() not in _UNSIGNED)))
    value = headers[header]
    mangled = data.draw(
        st.sampled_from(
            [
                None,
                "",
                value[: len(value) // 2],
                value + "A",
                value + "==",
                "x" + value,
                value.replace(",", ";"),
                value.replace("=", ":"),
                value * 300,
                value + "," + value,
            ]
        ).filter(lambda m: m != value)
    )
    if mangled is None:
        del headers[header]
    else:
        headers[header] = mangled
    _refused(name, headers, body)
