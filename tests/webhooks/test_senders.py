"""Round trips against the senders' own libraries: what they sign, we accept; what we sign,
they accept. (standardwebhooks, svix and stripe are dev dependencies.)"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import standardwebhooks
import stripe
import svix.webhooks
from hypothesis import given, settings, strategies as st

from interlink.webhooks import sign, verify

from .conftest import OTHER_STANDARD_SECRET, STANDARD_SECRET, TEXT_SECRET, rejected, source

bodies = st.binary(max_size=2000)
json_texts = st.text(max_size=500)  # stripe-python signs text: the body it sees is decoded UTF-8
ids = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1
)
timestamps = st.integers(min_value=1_000_000_000, max_value=4_000_000_000)


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


@settings(max_examples=60, deadline=None)
@given(body=bodies, msg_id=ids, ts=timestamps)
def test_standardwebhooks_signs_we_verify(body, msg_id, ts):
    signature = standardwebhooks.Webhook(STANDARD_SECRET).sign(msg_id, _at(ts), body)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}
    verified = verify(source("standard"), headers, body, now=ts + 299)
    assert (verified.delivery_id, verified.timestamp) == (msg_id, ts)


@settings(max_examples=60, deadline=None)
@given(body=bodies, msg_id=ids)
def test_we_sign_standardwebhooks_verifies(body, msg_id):
    now = int(time.time())
    headers = sign(source("standard"), body, timestamp=now, delivery_id=msg_id)
    assert standardwebhooks.Webhook(STANDARD_SECRET).verify(body, headers, json_parse=False) is None


def test_standardwebhooks_refuses_what_we_refuse():
    """The same tampered delivery fails in both."""
    now = int(time.time())
    body = b'{"type":"x"}'
    headers = sign(source("standard"), body, timestamp=now, delivery_id="msg_1")
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(STANDARD_SECRET).verify(body + b" ", headers)
    assert rejected(source("standard"), headers, body + b" ", now=now).reason == (
        "signature_mismatch"
    )


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=500), msg_id=ids, ts=timestamps)
def test_svix_signs_we_verify_with_svix_headers(text, msg_id, ts):
    signature = svix.webhooks.Webhook(STANDARD_SECRET).sign(msg_id, _at(ts), text)
    headers = {"svix-id": msg_id, "svix-timestamp": str(ts), "svix-signature": signature}
    verified = verify(source("standard"), headers, text.encode(), now=ts - 299)
    assert verified.delivery_id == msg_id
    assert set(verified.headers) == {"svix-id", "svix-timestamp", "svix-signature"}


def test_we_sign_svix_verifies_both_header_families():
    now = int(time.time())
    body = '{"type":"invoice.paid","data":{}}'
    headers = sign(source("standard"), body.encode(), timestamp=now, delivery_id="msg_2x")
    hook = svix.webhooks.Webhook(STANDARD_SECRET)
    hook.verify(body, headers)
    hook.verify(body, {name.replace("webhook-", "svix-"): v for name, v in headers.items()})


def test_svix_rotation_signature_pair():
    """A sender rotating its secret signs with both; we hold only the new one, or both."""
    ts = 1_700_000_000
    old = svix.webhooks.Webhook(OTHER_STANDARD_SECRET).sign("msg_r", _at(ts), "{}")
    new = svix.webhooks.Webhook(STANDARD_SECRET).sign("msg_r", _at(ts), "{}")
    headers = {"svix-id": "msg_r", "svix-timestamp": str(ts), "svix-signature": f"{old} {new}"}
    assert verify(source("standard"), headers, b"{}", now=ts).delivery_id == "msg_r"
    both = source("standard", secrets=[OTHER_STANDARD_SECRET, STANDARD_SECRET])
    assert verify(both, headers, b"{}", now=ts).delivery_id == "msg_r"


@settings(max_examples=60, deadline=None)
@given(text=json_texts, ts=timestamps)
def test_stripe_signs_we_verify(text, ts):
    header = stripe.WebhookSignature.generate_signature_header(text, TEXT_SECRET, timestamp=ts)
    verified = verify(source("stripe"), {"Stripe-Signature": header}, text.encode(), now=ts)
    assert verified.timestamp == ts


@settings(max_examples=60, deadline=None)
@given(text=json_texts)
def test_we_sign_stripe_verifies(text):
    now = int(time.time())
    headers = sign(source("stripe"), text.encode(), timestamp=now)
    assert stripe.WebhookSignature.verify_header(
        text.encode(), headers["Stripe-Signature"], TEXT_SECRET, tolerance=300
    )


def test_stripe_event_round_trip_reads_id_and_type():
    payload = '{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid"}'
    now = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(payload, TEXT_SECRET, now)
    event = stripe.Webhook.construct_event(payload, header, TEXT_SECRET, api_key="sk_test_x")
    verified = verify(source("stripe"), {"stripe-signature": header}, payload.encode(), now)
    assert (verified.delivery_id, verified.event_type) == (event["id"], event["type"])


def test_stripe_rotation_two_v1_signatures():
    ts = 1_700_000_000
    old = stripe.WebhookSignature.generate_signature_header("{}", "whsec_old_one", ts)
    new = stripe.WebhookSignature.generate_signature_header("{}", TEXT_SECRET, ts)
    header = old + "," + new.split(",", 1)[1]  # t=..,v1=old,v1=new
    assert verify(source("stripe"), {"Stripe-Signature": header}, b"{}", ts).timestamp == ts
    error = rejected(
        source("stripe", secret="whsec_third"), {"Stripe-Signature": header}, b"{}", ts
    )
    assert error.reason == "signature_mismatch"
