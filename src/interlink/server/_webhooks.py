"""`POST /api/v1/webhooks/{source}`: verify a delivery on its raw body, store it, answer.

```
POST /api/v1/webhooks/shop      202 {"data": {"id": 17, "delivery_id": "evt_1",
                                             "status": "accepted", "duplicate": false}}
  same delivery id again        200 {"data": {..., "duplicate": true}}
  bad or missing signature      401 (400 for a malformed header); nothing stored, the
                                refusal logged (reason, address, time; never the body)
  unknown or disabled source    404
  body over the source's max_body   413, before the body is read whole
  the inbox could not store it  503: the sender retries
```

It runs as a pure ASGI layer in front of the API's key check and rate limits: the
signature is a webhook's authentication, and senders retry on any non-2xx, so a delivery is
never refused for a rate and then lost. Paths with more segments (`/webhooks/deliveries`,
`/webhooks/deliveries/{id}/replay`) are the API's own routes and pass through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlink.config import InterlinkConfig, WebhookSourceConfig
from interlink.errors import SignatureError
from interlink.webhooks import Arrival, Inbox, InboxClosedError, Refusal, verify

from ._envelope import API_PREFIX, ERROR_CODES, meta

__all__ = ["WEBHOOK_PREFIX", "WebhookReceiver"]

log = logging.getLogger("interlink.webhooks")

WEBHOOK_PREFIX = f"{API_PREFIX}/webhooks/"


class _TooLarge(Exception):
    pass


class WebhookReceiver:
    """The receiving route, ahead of the API's middleware for the paths it owns."""

    def __init__(
        self,
        app: ASGIApp,
        config: InterlinkConfig,
        inbox: Callable[[], Inbox],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.sources = config.webhooks
        self.inbox = inbox
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(WEBHOOK_PREFIX):
            await self.app(scope, receive, send)
            return
        source = path[len(WEBHOOK_PREFIX) :]
        if not source or "/" in source or source in ("deliveries", "rejections"):
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _error(send, scope, 405, "Webhooks are received with POST.", allow="POST")
            return
        config = self.sources.get(source)
        if config is None or not config.enabled:
            await _error(send, scope, 404, f"No webhook source named {source!r} here.")
            return
        await self._receive(scope, receive, send, source, config)

    async def _receive(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        source: str,
        config: WebhookSourceConfig,
    ) -> None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        received_at = self.clock()
        try:
            body = await _read_body(headers, receive, config.max_body)
        except _TooLarge:
            await _error(
                send,
                scope,
                413,
                f"The body is over this source's max_body ({config.max_body} bytes).",
            )
            return
        if body is None:
            return  # the sender went away mid-body: nobody to answer
        try:
            verified = verify(config, headers, body, received_at)
        except SignatureError as exc:
            address = _address(scope)
            log.info("webhook %s refused (%s) from %s", source, exc.reason, address or "?")
            self.inbox().reject(
                Refusal(source, exc.reason, exc.status, str(exc), address, received_at)
            )
            await _error(send, scope, exc.status, str(exc), code=_code(exc))
            return
        arrival = Arrival(
            source,
            verified.delivery_id,
            verified.event_type,
            received_at,
            body,
            dict(verified.headers),
            config.max_attempts,
        )
        try:
            stored = await self.inbox().accept(arrival)
        except InboxClosedError:
            await _error(send, scope, 503, "The server is shutting down; send it again.")
            return
        except Exception:
            log.exception(
                "webhook %s: delivery %s could not be stored", source, arrival.delivery_id
            )
            await _error(send, scope, 503, "The delivery could not be stored; send it again.")
            return
        data = {
            "id": stored.id,
            "source": source,
            "delivery_id": verified.delivery_id,
            "event_type": verified.event_type,
            "status": "accepted",
            "duplicate": stored.duplicate,
        }
        await _answer(send, 200 if stored.duplicate else 202, _envelope(scope, data))


def _code(exc: SignatureError) -> str:
    return "INVALID_SIGNATURE" if exc.status == 401 else "INVALID_REQUEST"


async def _read_body(
    headers: list[tuple[bytes, bytes]], receive: Receive, limit: int
) -> bytes | None:
    for name, value in headers:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise _TooLarge
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _envelope(scope: Scope, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"status": "success", "data": data, "meta": meta(scope)})


async def _error(
    send: Send,
    scope: Scope,
    status: int,
    message: str,
    *,
    code: str | None = None,
    allow: str | None = None,
) -> None:
    body = {
        "status": "error",
        "error": {"code": code or ERROR_CODES[status], "message": message, "details": []},
        "meta": meta(scope),
    }
    extra = [(b"allow", allow.encode())] if allow else []
    await _answer(send, status, orjson.dumps(body), extra)


async def _answer(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *(extra or []),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
