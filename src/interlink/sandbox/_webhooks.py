"""The shop's webhook sender: one signed event per changed record, posted in the background.

When a customer is created (`POST /customers`) or changed (`PATCH /customers/{id}`), or a
customer, product or order is touched (`POST /_touch`), the shop posts to the configured
target, for each record:

```json
{"id": "evt_...", "type": "customer.updated", "created_at": "2024-01-31T12:00:00Z",
 "data": {"id": 4, "object": {...the record as GET /customers/4 returns it...}}}
```

signed with the target's scheme (`_webhook_signing`). Types: `customer.created`,
`customer.updated`, `product.updated`, `order.updated`. The API answers first; deliveries
go through a bounded queue (a full queue drops the event and counts it) to a few workers
in the app's event loop. A non-2xx answer, a timeout or a refused connection is retried
with a doubling backoff, with the same event id (so the same `webhook-id`), up to
`max_attempts`; deliveries are not ordered, as with real senders. On shutdown the queue is
flushed for `flush_timeout` seconds, and what is left is dropped and counted.

Admin routes (exempt from auth, limits, faults and counters, like `/_stats`):

- `POST /_webhooks` with `{"url", "scheme", "secret", "events"?, "api_key"?}` sets the
  target (422 with details when it is not valid); deliveries still pending for an earlier
  target are dropped.
- `GET /_webhooks`: the target without the secret, delivery counters, the last deliveries.
- `DELETE /_webhooks`: stop sending.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ._responses import JSONResponse, error_response
from ._store import now_timestamp
from ._webhook_signing import InvalidWebhookTargetError, WebhookTarget, sign_delivery

__all__ = ["WebhookSender", "WebhookStats", "webhook_routes"]

_RECENT = 20
_USER_AGENT = "interlink-sandbox-shop/1"
_TARGET_FIELDS = ("url", "scheme", "secret", "events", "api_key")


@dataclass
class WebhookStats:
    """Counters of one sender since it was made or reset."""

    events: int = 0
    """Events queued for delivery."""
    filtered: int = 0
    """Changes the target's `events` filter left out."""
    sent: int = 0
    """Deliveries the receiver answered with a 2xx."""
    failed: int = 0
    """Deliveries given up after `max_attempts`."""
    retried: int = 0
    """Attempts after the first."""
    attempts: int = 0
    dropped: int = 0
    """Events lost to a full queue, a changed target, or shutdown."""


@dataclass
class _Delivery:
    target: WebhookTarget
    event_id: str
    event_type: str
    record_id: object
    body: bytes = field(repr=False)
    attempts: int = 0
    status: str = "pending"
    last_result: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "type": self.event_type,
            "record_id": self.record_id,
            "status": self.status,
            "attempts": self.attempts,
            "last_result": self.last_result,
        }


class WebhookSender:
    """Posts the shop's change events to a `WebhookTarget`, asynchronously, with retries.

    The shop owns one (`app.state.webhooks`); `create_shop_app(webhooks=...)` takes a target
    or a sender built with other settings:

    ```python
    sender = WebhookSender(target, max_attempts=3, backoff=0.05)
    app = create_shop_app(webhooks=sender)
    ```

    Its workers start in the event loop of the first change; `aclose()` (the app's
    lifespan shutdown) flushes and stops them.
    """

    def __init__(
        self,
        target: WebhookTarget | None = None,
        *,
        max_attempts: int = 5,
        backoff: float = 0.25,
        max_backoff: float = 5.0,
        timeout: float = 5.0,
        max_queue: int = 1000,
        concurrency: int = 4,
        flush_timeout: float = 2.0,
    ) -> None:
        if max_attempts < 1 or max_queue < 1 or concurrency < 1:
            raise ValueError("max_attempts, max_queue and concurrency must be at least 1")
        if min(backoff, max_backoff, timeout, flush_timeout) < 0:
            raise ValueError("backoff, max_backoff, timeout and flush_timeout must not be negative")
        self.target = target
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.max_queue = max_queue
        self.concurrency = concurrency
        self.flush_timeout = flush_timeout
        self.stats = WebhookStats()
        self.last_error: dict[str, Any] | None = None
        self._recent: deque[_Delivery] = deque(maxlen=_RECENT)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Delivery] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._in_flight = 0
        self._closing = False

    # -- changes ------------------------------------------------------------------------

    def record_changed(self, kind: str, action: str, record: Mapping[str, object]) -> None:
        """Queue the `{kind}.{action}` event of `record`, if a target wants it; never waits.

        Call it from the app's event loop, after the change is stored.
        """
        target = self.target
        if target is None:
            return
        event_type = f"{kind}.{action}"
        if not target.wants(event_type):
            self.stats.filtered += 1
            return
        event_id = "evt_" + secrets.token_hex(12)
        event = {
            "id": event_id,
            "type": event_type,
            "created_at": now_timestamp(),
            "data": {"id": record["id"], "object": record},
        }
        delivery = _Delivery(target, event_id, event_type, record["id"], orjson.dumps(event))
        self.stats.events += 1
        self._recent.append(delivery)
        if self._closing:
            self._settle(delivery, "dropped")
            return
        try:
            self._running_queue().put_nowait(delivery)
        except asyncio.QueueFull:
            self._settle(delivery, "dropped")

    def _running_queue(self) -> asyncio.Queue[_Delivery]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            # First change, or a new loop (an app served again): fresh queue and workers.
            queue: asyncio.Queue[_Delivery] = asyncio.Queue(maxsize=self.max_queue)
            client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                trust_env=False,  # a sandbox talks to 127.0.0.1, never through a proxy
                headers={"User-Agent": _USER_AGENT, "Content-Type": "application/json"},
            )
            self._loop, self._queue, self._client = loop, queue, client
            self._workers = [
                loop.create_task(self._work(queue, client), name=f"shop-webhooks-{n}")
                for n in range(self.concurrency)
            ]
        return self._queue

    # -- delivery -----------------------------------------------------------------------

    async def _work(self, queue: asyncio.Queue[_Delivery], client: httpx.AsyncClient) -> None:
        while True:
            delivery = await queue.get()
            self._in_flight += 1
            try:
                await self._deliver(delivery, client)
            except asyncio.CancelledError:
                self._settle(delivery, "dropped")
                raise
            finally:
                self._in_flight -= 1
                queue.task_done()

    async def _deliver(self, delivery: _Delivery, client: httpx.AsyncClient) -> None:
        while True:
            if delivery.target is not self.target:
                self._settle(delivery, "dropped")
                return
            delivery.attempts += 1
            self.stats.attempts += 1
            if delivery.attempts > 1:
                self.stats.retried += 1
            ok = await self._attempt(delivery, client)
            if ok:
                self._settle(delivery, "sent")
                return
            self.last_error = {
                "id": delivery.event_id,
                "attempt": delivery.attempts,
                "result": delivery.last_result,
                "at": now_timestamp(),
            }
            if delivery.attempts >= self.max_attempts:
                self._settle(delivery, "failed")
                return
            await asyncio.sleep(min(self.backoff * 2 ** (delivery.attempts - 1), self.max_backoff))

    async def _attempt(self, delivery: _Delivery, client: httpx.AsyncClient) -> bool:
        target = delivery.target
        headers = sign_delivery(
            target,
            delivery.body,
            delivery_id=delivery.event_id,
            event_type=delivery.event_type,
            timestamp=int(time.time()),
        )
        try:
            response = await client.post(target.url, content=delivery.body, headers=headers)
        except Exception as error:  # any failure of one attempt is retried like a 5xx
            name, text = type(error).__name__, str(error).strip()
            delivery.last_result = f"{name}: {text}"[:200] if text else name
            return False
        delivery.last_result = f"HTTP {response.status_code}"
        return 200 <= response.status_code < 300

    def _settle(self, delivery: _Delivery, status: str) -> None:
        delivery.status = status
        if status == "sent":
            self.stats.sent += 1
        elif status == "failed":
            self.stats.failed += 1
        else:
            self.stats.dropped += 1

    # -- state --------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Deliveries queued or under way."""
        queued = self._queue.qsize() if self._queue is not None else 0
        return queued + self._in_flight

    def as_dict(self) -> dict[str, Any]:
        """What `GET /_webhooks` answers: never the secret or the API key."""
        target = self.target
        shown: dict[str, Any] = (
            target.describe()
            if target is not None
            else {"url": None, "scheme": None, "events": None, "api_key": False}
        )
        return {
            "enabled": target is not None,
            **shown,
            "stats": {**asdict(self.stats), "pending": self.pending},
            "last_error": self.last_error,
            "recent": [delivery.summary() for delivery in reversed(self._recent)],
        }

    def reset(self) -> None:
        """Forget the counters and the recent deliveries (the target stays)."""
        self.stats = WebhookStats()
        self.last_error = None
        self._recent.clear()

    async def aclose(self, timeout: float | None = None) -> None:
        """Deliver what is pending for up to `timeout` seconds (`flush_timeout` by default),
        then stop the workers; whatever is left is dropped and counted."""
        queue, workers, client = self._queue, self._workers, self._client
        if queue is None or client is None:
            return
        self._closing = True
        try:
            wait = self.flush_timeout if timeout is None else timeout
            try:
                await asyncio.wait_for(queue.join(), wait)
            except TimeoutError:
                pass
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            while not queue.empty():
                self._settle(queue.get_nowait(), "dropped")
            await client.aclose()
        finally:
            self._loop = self._queue = self._client = None
            self._workers = []
            self._closing = False


def _target_from(payload: Any) -> WebhookTarget:
    if not isinstance(payload, dict):
        raise InvalidWebhookTargetError([("", "the body must be a JSON object")])
    unknown = [(name, "unknown field") for name in sorted(set(payload) - set(_TARGET_FIELDS))]
    if unknown:
        raise InvalidWebhookTargetError(unknown)
    missing = [(name, "required") for name in ("url", "secret") if name not in payload]
    if missing:
        raise InvalidWebhookTargetError(missing)
    events = payload.get("events")
    if isinstance(events, list):
        events = tuple(events)
    return WebhookTarget(
        url=payload["url"],
        secret=payload["secret"],
        scheme=payload.get("scheme", "standard"),
        events=events,
        api_key=payload.get("api_key"),
    )


def webhook_routes(sender: WebhookSender) -> list[BaseRoute]:
    """`GET`, `POST` and `DELETE /_webhooks` for `sender`."""

    async def show(request: Request) -> Response:
        return JSONResponse(sender.as_dict())

    async def configure(request: Request) -> Response:
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return error_response(400, "invalid_json", "The body is not valid JSON.")
        try:
            target = _target_from(payload)
        except InvalidWebhookTargetError as error:
            details = [{"field": name, "issue": issue} for name, issue in error.problems]
            return error_response(
                422, "validation_error", "The webhook target is not valid.", details=details
            )
        sender.target = target
        return JSONResponse(sender.as_dict())

    async def remove(request: Request) -> Response:
        sender.target = None
        return JSONResponse(sender.as_dict())

    return [
        Route("/_webhooks", show, methods=["GET"]),
        Route("/_webhooks", configure, methods=["POST"]),
        Route("/_webhooks", remove, methods=["DELETE"]),
    ]
