"""The shop's webhooks, sent to a real receiver and checked with interlink's own verifier."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from typer.testing import CliRunner

from interlink.cli.main import app as cli
from interlink.config import WebhookSourceConfig
from interlink.errors import SignatureError
from interlink.sandbox import (
    InvalidWebhookTargetError,
    SandboxServer,
    WebhookSender,
    WebhookTarget,
    create_sandbox_app,
    create_shop_app,
)
from interlink.webhooks import Verified, verify

SECRET = "whsec_" + base64.b64encode(b"the shop's webhook signing key").decode()
PLAIN_SECRET = "shop-hmac-secret-123"
_SOURCE = TypeAdapter(WebhookSourceConfig)


@dataclass
class Received:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    at: float

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.decode("latin-1").lower() == name.lower():
                return value.decode("latin-1")
        return None

    @property
    def event(self) -> dict[str, Any]:
        found: dict[str, Any] = orjson.loads(self.body)
        return found


class Receiver:
    """A webhook endpoint at `/hook` that keeps every request and answers `statuses` in
    turn (then 200), each after `delay` seconds."""

    def __init__(self, statuses: tuple[int, ...] = (), delay: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.delay = delay
        self.received: list[Received] = []
        self.app = Starlette(routes=[Route("/hook", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        self.received.append(Received(list(request.headers.raw), await request.body(), time.time()))
        if self.delay:
            await asyncio.sleep(self.delay)
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} deliveries, not {count}, in {timeout}s")
            time.sleep(0.01)
        return list(self.received)


Serve = Callable[[Any], SandboxServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start any app on a real port; stopped in reverse order (receivers outlive shops)."""
    servers: list[SandboxServer] = []

    def start(app: Any) -> SandboxServer:
        server = SandboxServer(app)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.stop()


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s")
        time.sleep(0.01)


def checked(config: dict[str, Any], delivery: Received) -> Verified:
    """interlink's verdict on a delivery, as its receiving route would give it."""
    return verify(_SOURCE.validate_python(config), delivery.headers, delivery.body, time.time())


def configure(shop: SandboxServer, receiver: SandboxServer, **fields: Any) -> httpx.Response:
    body = {"url": f"{receiver.url}/hook", "scheme": "standard", "secret": SECRET, **fields}
    return httpx.post(f"{shop.url}/_webhooks", json=body)


def webhooks(shop: SandboxServer) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{shop.url}/_webhooks").json()
    return found


def test_a_patch_arrives_signed_and_interlink_verifies_it(serve: Serve) -> None:
    receiver = Receiver()
    hook = serve(receiver.app)
    shop = serve(create_shop_app(records=10, token="t"))
    answer = configure(shop, hook)
    assert answer.status_code == 200 and answer.json()["enabled"] is True
    patched = httpx.patch(
        f"{shop.url}/customers/4",
        json={"company": "Changed"},
        headers={"Authorization": "Bearer t"},
    )
    assert patched.status_code == 200

    (delivery,) = receiver.wait_for(1)
    verified = checked({"scheme": "standard", "secret": SECRET}, delivery)
    event = delivery.event
    assert verified.event_type == "customer.updated" == event["type"]
    assert verified.delivery_id == event["id"] == delivery.header("webhook-id")
    assert event["id"].startswith("evt_")
    assert event["data"]["id"] == 4
    assert event["data"]["object"] == patched.json()
    assert delivery.header("content-type") == "application/json"
    # Signed for this shop's secret only.
    other = "whsec_" + base64.b64encode(b"someone else's key").decode()
    with pytest.raises(SignatureError):
        checked({"scheme": "standard", "secret": other}, delivery)
    wait_until(lambda: webhooks(shop)["stats"]["sent"] == 1)
    stats = webhooks(shop)["stats"]
    assert stats == {
        "events": 1,
        "filtered": 0,
        "sent": 1,
        "failed": 0,
        "retried": 0,
        "attempts": 1,
        "dropped": 0,
        "pending": 0,
    }


SCHEMES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "hmac": (
        {"scheme": "hmac", "secret": PLAIN_SECRET},
        {
            "scheme": "hmac",
            "secret": PLAIN_SECRET,
            "event_type": {"header": "X-Event-Type"},
            "delivery_id": {"header": "X-Event-Id"},
        },
    ),
    "hmac-defaults": (
        {"scheme": "hmac", "secret": PLAIN_SECRET, "api_key": "key-1"},
        # The guide's controller: X-Signature over the body, and an X-API-Key.
        {"scheme": "hmac", "secret": PLAIN_SECRET, "api_key": "key-1"},
    ),
    "stripe": (
        {"scheme": "stripe", "secret": "whsec_stripe-style-secret"},
        {"scheme": "stripe", "secret": "whsec_stripe-style-secret"},
    ),
    "github": (
        {"scheme": "github", "secret": PLAIN_SECRET},
        {"scheme": "github", "secret": PLAIN_SECRET},
    ),
    "shopify": (
        {"scheme": "shopify", "secret": PLAIN_SECRET},
        {"scheme": "shopify", "secret": PLAIN_SECRET},
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_every_scheme_is_accepted_by_interlink(serve: Serve, name: str) -> None:
    sent, received = SCHEMES[name]
    receiver = Receiver()
    hook = serve(receiver.app)
    shop = serve(create_shop_app(records=10))
    assert configure(shop, hook, **sent).status_code == 200
    created = httpx.post(f"{shop.url}/customers", json={"email": "new@example.com"}).json()

    (delivery,) = receiver.wait_for(1)
    verified = checked(received, delivery)
    event = delivery.event
    assert event["type"] == "customer.created" and event["data"]["object"] == created
    if name == "hmac-defaults":
        # No event type configured; the delivery id defaults to the body's SHA-256.
        assert verified.event_type is None
        assert delivery.header("X-API-Key") == "key-1"
        with pytest.raises(SignatureError):
            checked({**received, "api_key": "key-2"}, delivery)
    else:
        assert verified.event_type == "customer.created"
        assert verified.delivery_id == event["id"]


def test_a_failing_receiver_gets_the_same_id_until_it_answers_2xx(serve: Serve) -> None:
    receiver = Receiver(statuses=(500, 500))
    hook = serve(receiver.app)
    app = create_shop_app(records=10, webhooks=WebhookSender(backoff=0.05))
    shop = serve(app)
    configure(shop, hook)
    httpx.patch(f"{shop.url}/customers/2", json={"phone": "555"})

    deliveries = receiver.wait_for(3)
    ids = {delivery.header("webhook-id") for delivery in deliveries}
    assert len(ids) == 1 and ids == {deliveries[0].event["id"]}
    assert {delivery.body for delivery in deliveries} == {deliveries[0].body}
    for delivery in deliveries:  # each attempt signed afresh
        checked({"scheme": "standard", "secret": SECRET}, delivery)
    # Backoff 0.05 s, then doubled.
    assert deliveries[1].at - deliveries[0].at >= 0.045
    assert deliveries[2].at - deliveries[1].at >= 0.095
    wait_until(lambda: webhooks(shop)["stats"]["sent"] == 1)
    shown = webhooks(shop)
    assert shown["stats"]["retried"] == 2 and shown["stats"]["attempts"] == 3
    assert shown["stats"]["failed"] == 0
    assert shown["last_error"]["result"] == "HTTP 500" and shown["last_error"]["attempt"] == 2
    (recent,) = shown["recent"]
    assert recent["status"] == "sent" and recent["attempts"] == 3
    assert recent["last_result"] == "HTTP 200" and recent["record_id"] == 2
    time.sleep(0.2)
    assert len(receiver.received) == 3  # nothing after the 2xx


def test_a_delivery_is_given_up_after_max_attempts(serve: Serve) -> None:
    receiver = Receiver(statuses=(503,) * 10)
    hook = serve(receiver.app)
    shop = serve(create_shop_app(records=5, webhooks=WebhookSender(max_attempts=3, backoff=0.01)))
    configure(shop, hook)
    httpx.post(f"{shop.url}/_touch", json={"resource": "customers", "ids": [1]})
    wait_until(lambda: webhooks(shop)["stats"]["failed"] == 1)
    assert len(receiver.received) == 3
    shown = webhooks(shop)
    assert shown["stats"]["attempts"] == 3 and shown["recent"][0]["status"] == "failed"


def test_a_refused_connection_is_retried_then_failed(serve: Serve) -> None:
    gone = serve(Receiver().app)
    url = gone.url
    gone.stop()  # nothing listens on that port any more
    sender = WebhookSender(max_attempts=2, backoff=0.01)
    shop = serve(create_shop_app(records=5, webhooks=sender))
    httpx.post(f"{shop.url}/_webhooks", json={"url": f"{url}/hook", "secret": SECRET})
    httpx.patch(f"{shop.url}/customers/1", json={"phone": "1"})
    wait_until(lambda: webhooks(shop)["stats"]["failed"] == 1)
    shown = webhooks(shop)
    assert shown["stats"]["retried"] == 1
    assert shown["last_error"]["result"].startswith("ConnectError")


def test_the_events_filter_sends_only_what_it_names(serve: Serve) -> None:
    receiver = Receiver()
    hook = serve(receiver.app)
    shop = serve(create_shop_app(records=10))
    configure(shop, hook, events=["customer.created", "product.*"])
    httpx.patch(f"{shop.url}/customers/1", json={"phone": "1"})
    orders = httpx.get(f"{shop.url}/orders", params={"limit": 2}).json()["data"]
    touched = httpx.post(
        f"{shop.url}/_touch", json={"resource": "orders", "ids": [o["id"] for o in orders]}
    )
    assert touched.status_code == 200
    httpx.post(f"{shop.url}/_touch", json={"resource": "products", "ids": [3, 4]})
    httpx.post(f"{shop.url}/customers", json={"email": "x@example.com"})

    deliveries = receiver.wait_for(3)
    seen = sorted((d.event["type"], d.event["data"]["id"]) for d in deliveries)
    assert seen == [("customer.created", 11), ("product.updated", 3), ("product.updated", 4)]
    product = httpx.get(f"{shop.url}/products/3").json()
    assert next(d for d in deliveries if d.event["data"]["id"] == 3).event["data"]["object"] == (
        product
    )
    shown = webhooks(shop)
    assert shown["events"] == ["customer.created", "product.*"]
    assert shown["stats"]["filtered"] == 3 and shown["stats"]["events"] == 3
    time.sleep(0.2)
    assert len(receiver.received) == 3


def test_the_secret_never_shows(serve: Serve) -> None:
    shop = serve(create_shop_app(records=3))
    hook = serve(Receiver().app)
    answers = [
        configure(shop, hook),
        httpx.get(f"{shop.url}/_webhooks"),
        configure(shop, hook, scheme="hmac", secret=PLAIN_SECRET, api_key="api-key-value"),
        httpx.get(f"{shop.url}/_webhooks"),
        configure(shop, hook, secret="whsec_not base64!"),  # 422: names the field, not the value
        httpx.get(f"{shop.url}/_stats"),
        httpx.delete(f"{shop.url}/_webhooks"),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 422, 200, 200]
    for answer in answers:
        for secret in (SECRET, SECRET[6:], PLAIN_SECRET, "api-key-value", "not base64"):
            assert secret not in answer.text
    assert answers[3].json()["api_key"] is True and answers[3].json()["scheme"] == "hmac"
    target = WebhookTarget("http://u:pw@127.0.0.1:1/hook", secret=PLAIN_SECRET, scheme="github")
    assert PLAIN_SECRET not in repr(target) and "pw" not in str(target.describe())


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"url": "ftp://x/hook", "secret": SECRET}, {"url"}),
        ({"url": "/hook", "secret": SECRET}, {"url"}),
        ({"url": "http://h/hook", "secret": SECRET, "scheme": "slack"}, {"scheme"}),
        ({"url": "http://h/hook", "secret": "plain"}, {"secret"}),  # standard wants whsec_
        ({"url": "http://h/hook", "secret": "", "scheme": "hmac"}, {"secret"}),
        ({"url": "http://h/hook", "secret": SECRET, "events": "customer.updated"}, {"events"}),
        ({"url": "http://h/hook", "secret": SECRET, "events": []}, {"events"}),
        ({"url": "http://h/hook", "secret": SECRET, "events": ["*.updated"]}, {"events"}),
        ({"url": "http://h/hook", "secret": SECRET, "api_key": "k"}, {"api_key"}),
        ({"url": "http://h/hook", "secret": SECRET, "colour": "red"}, {"colour"}),
        ({"secret": SECRET}, {"url"}),
        ([1], {""}),
    ],
)
async def test_a_bad_target_is_422_and_changes_nothing(
    body: Any, fields: set[str], shop_client: Any
) -> None:
    client = shop_client(records=3)
    answer = await client.post("/_webhooks", json=body)
    assert answer.status_code == 422
    assert {detail["field"] for detail in answer.json()["error"]["details"]} == fields
    assert (await client.get("/_webhooks")).json()["enabled"] is False
    assert (await client.post("/_webhooks", content=b"{")).status_code == 400


def test_a_bad_target_in_python_names_every_field() -> None:
    with pytest.raises(InvalidWebhookTargetError) as caught:
        WebhookTarget("nowhere", secret="plain", scheme="standard", api_key="k")
    assert [name for name, _ in caught.value.problems] == ["url", "secret", "api_key"]
    assert "plain" not in str(caught.value)
    # A list from JSON is kept as a tuple.
    target = WebhookTarget("http://h/x", secret=SECRET, events=["a.b"])  # type: ignore[arg-type]
    assert target.events == ("a.b",) and target.wants("a.b") and not target.wants("a.c")


def test_delete_stops_sending_and_a_new_target_starts_again(serve: Serve) -> None:
    receiver = Receiver()
    hook = serve(receiver.app)
    shop = serve(create_shop_app(records=10))
    configure(shop, hook)
    httpx.patch(f"{shop.url}/customers/1", json={"phone": "1"})
    receiver.wait_for(1)
    off = httpx.delete(f"{shop.url}/_webhooks").json()
    assert off["enabled"] is False and off["url"] is None
    httpx.patch(f"{shop.url}/customers/2", json={"phone": "2"})
    assert webhooks(shop)["stats"]["events"] == 1
    configure(shop, hook)
    httpx.patch(f"{shop.url}/customers/3", json={"phone": "3"})
    deliveries = receiver.wait_for(2)
    assert [d.event["data"]["id"] for d in deliveries] == [1, 3]


def test_the_api_answers_without_waiting_for_the_receiver(serve: Serve) -> None:
    receiver = Receiver(delay=1.0)
    hook = serve(receiver.app)
    shop = serve(create_shop_app(records=10))
    configure(shop, hook)
    started = time.monotonic()
    answer = httpx.patch(f"{shop.url}/customers/1", json={"phone": "1"})
    # Well before the receiver's answer could have come.
    assert answer.status_code == 200 and time.monotonic() - started < 0.9
    receiver.wait_for(1)  # the delivery was under way meanwhile
    assert webhooks(shop)["stats"]["pending"] == 1


def test_a_full_queue_drops_and_counts(serve: Serve) -> None:
    receiver = Receiver()
    hook = serve(receiver.app)
    sender = WebhookSender(max_queue=2, concurrency=1)
    shop = serve(create_shop_app(records=20, webhooks=sender))
    configure(shop, hook)
    # One handler queues all ten before a worker runs: two fit, eight are dropped.
    httpx.post(f"{shop.url}/_touch", json={"resource": "customers", "ids": list(range(1, 11))})
    receiver.wait_for(2)
    wait_until(lambda: webhooks(shop)["stats"]["sent"] == 2)
    stats = webhooks(shop)["stats"]
    assert stats["events"] == 10 and stats["dropped"] == 8 and stats["pending"] == 0
    assert sorted(d.event["data"]["id"] for d in receiver.received) == [1, 2]


def test_shutdown_flushes_what_is_pending(serve: Serve) -> None:
    receiver = Receiver(delay=0.2)
    hook = serve(receiver.app)
    app = create_shop_app(records=10, webhooks=WebhookSender(concurrency=1))
    shop = SandboxServer(app)
    shop.start()
    configure(shop, hook)
    httpx.post(f"{shop.url}/_touch", json={"resource": "customers", "ids": [1, 2, 3]})
    shop.stop()  # about 0.6 s of deliveries still to go
    assert sorted(d.event["data"]["id"] for d in receiver.received) == [1, 2, 3]
    assert app.state.webhooks.stats.sent == 3


def test_shutdown_gives_up_after_the_flush_timeout(serve: Serve) -> None:
    receiver = Receiver(statuses=(500,) * 100)
    hook = serve(receiver.app)
    sender = WebhookSender(backoff=5.0, flush_timeout=0.3)
    shop = SandboxServer(create_shop_app(records=10, webhooks=sender))
    shop.start()
    configure(shop, hook)
    httpx.post(f"{shop.url}/_touch", json={"resource": "products", "ids": [1, 2]})
    receiver.wait_for(2)
    started = time.monotonic()
    shop.stop()
    assert time.monotonic() - started < 3.0
    assert sender.stats.dropped == 2 and sender.stats.sent == 0 and sender.pending == 0


def test_the_suite_sends_for_its_shop_and_flushes_on_shutdown(serve: Serve) -> None:
    receiver = Receiver(delay=0.3)
    hook = serve(receiver.app)
    target = WebhookTarget(f"{hook.url}/hook", secret=PLAIN_SECRET, scheme="github")
    app = create_sandbox_app(records=20, token="t", webhooks=target)
    suite = SandboxServer(app)
    suite.start()
    shown = httpx.get(f"{suite.url}/shop/_webhooks")  # admin: no token needed
    assert shown.status_code == 200 and shown.json()["scheme"] == "github"
    answer = httpx.patch(
        f"{suite.url}/shop/customers/7", json={"phone": "7"}, headers={"Authorization": "Bearer t"}
    )
    assert answer.status_code == 200
    suite.stop()  # the delivery is still in the receiver's 0.3 s
    assert app.state.shop.state.webhooks.stats.sent == 1  # waited for, not cancelled
    (delivery,) = receiver.received
    verified = checked({"scheme": "github", "secret": PLAIN_SECRET}, delivery)
    assert verified.event_type == "customer.updated" and delivery.event["data"]["id"] == 7


def test_reset_forgets_counters_but_keeps_the_target(serve: Serve) -> None:
    receiver = Receiver()
    hook = serve(receiver.app)
    shop = serve(create_shop_app(records=10))
    configure(shop, hook)
    httpx.patch(f"{shop.url}/customers/1", json={"phone": "1"})
    receiver.wait_for(1)
    wait_until(lambda: webhooks(shop)["stats"]["sent"] == 1)
    httpx.post(f"{shop.url}/_reset")
    shown = webhooks(shop)
    assert shown["enabled"] is True and shown["stats"]["sent"] == 0 and shown["recent"] == []


def test_the_cli_passes_its_webhook_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.append(self.config))
    args = ["sandbox", "--port", "8768", "--webhook-url", "http://127.0.0.1:9/api/v1/webhooks/shop"]
    result = CliRunner().invoke(
        cli,
        [*args, "--webhook-scheme", "hmac", "--webhook-event", "customer.*"],
        env={"INTERLINK_SANDBOX_WEBHOOK_SECRET": PLAIN_SECRET},
    )
    assert result.exit_code == 0, result.output
    assert "hmac -> http://127.0.0.1:9/api/v1/webhooks/shop  (customer.*)" in result.output
    assert PLAIN_SECRET not in result.output
    (config,) = seen
    assert isinstance(config.app, Starlette)
    target = config.app.state.shop.state.webhooks.target
    assert (target.scheme, target.secret, target.events) == ("hmac", PLAIN_SECRET, ("customer.*",))


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ([], "--webhook-url and --webhook-secret go together"),
        (["--webhook-secret", "not-whsec"], "--webhook-secret: a standard secret is whsec_"),
        (["--webhook-secret", SECRET, "--webhook-scheme", "slack"], "--webhook-scheme: one of"),
    ],
)
def test_the_cli_refuses_bad_webhook_flags(
    monkeypatch: pytest.MonkeyPatch, extra: list[str], reason: str
) -> None:
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    monkeypatch.delenv("INTERLINK_SANDBOX_WEBHOOK_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["sandbox", "--webhook-url", "http://127.0.0.1:9/h", *extra])
    assert result.exit_code == 2
    assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "not-whsec" not in result.stderr
