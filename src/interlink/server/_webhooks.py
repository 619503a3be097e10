"""`POST /api/v1/webhooks/{source}`: verify a delivery on its raw body, store it, answer.

```
POST /api/v1/webhooks/shop      202 {"data": {"id": 17, "delivery_id": "evt_1",
                                             "status": "accepted", "duplicate": false}}
  same delivery id again        200 {"data": {..., "duplicate": true}}
  bad or missing signature      401 (400 for a malformed header); nothing stored, the
                                refusal logged (reason, address, time; never the body)
  unknown or disabled source    404
  its `connection:` switched off   202 all the same: stored, and held unprocessed until it
                                is switched on (webhooks/_held.py)
  body over the source's max_body   413, before the body is read whole
  the inbox could not store it  503: the sender retries
```

It is the outermost layer of the app (`InterlinkApp.build_middleware_stack`), ahead of
the API's key check and rate limits: the signature is a webhook's authentication, and
senders retry on any non-2xx, so a delivery is never refused for a rate and then lost. It
gives its answers what the API's middleware gives every answer (the request id, the
security headers, the client's address behind trusted proxies), and leaves to that
middleware every request it does not take whole: other paths (`/webhooks/deliveries`...),
and requests with doubtful framing (Content-Length with Transfer-Encoding, an unknown HTTP
version, an oversized head), which the framing check refuses as it refuses them anywhere.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlink.config import InterlinkConfig, WebhookSourceConfig
from interlink.errors import SignatureError
from interlink.webhooks import Arrival, Inbox, InboxClosedError, ProcessInbox, Refusal, verify

from ._envelope import (
    API_PREFIX,
    ERROR_CODES,
    meta,
    request_id,
    sane_request_id,
)
from ._framing import framing_problem
from ._one_write import WHOLE_ANSWER
from ._proxies import TrustedProxies
from ._security import SECURITY_HEADERS, STRICT_CSP

__all__ = ["WEBHOOK_PREFIX", "WebhookReceiver"]

log = logging.getLogger("interlink.webhooks")

WEBHOOK_PREFIX = f"{API_PREFIX}/webhooks/"
STORE_TIMEOUT = 30.0
"""Seconds a request waits for its delivery's commit before it answers 503."""


class _TooLarge(Exception):
    pass


class WebhookReceiver:
    """The receiving route, ahead of the API's middleware for the paths it owns."""

    def __init__(
        self,
        app: ASGIApp,
        config: InterlinkConfig,
        inbox: Callable[[], Inbox | ProcessInbox],
        *,
        proxies: TrustedProxies | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.sources = config.webhooks
        self.inbox = inbox
        self.proxies = proxies or TrustedProxies(config.server.trusted_proxies)
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
        if framing_problem(scope) is not None:
            await self.app(scope, receive, send)  # the framing check answers it
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        try:
            await self._route(scope, receive, send, source)
        except Exception:
            log.exception("webhook %s: request %s failed", source, request_id)
            await _error(send, scope, 500, "Internal error; quote the request id.")

    async def _route(self, scope: Scope, receive: Receive, send: Send, source: str) -> None:
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
            # The connection is closed after it: the rest of the body is never read.
            await _error(
                send,
                scope,
                413,
                f"The body is over this source's max_body ({config.max_body} bytes).",
                close=True,
            )
            return
        if body is None:
            return  # the sender went away mid-body: nobody to answer
        try:
            verified = verify(config, headers, body, received_at)
        except SignatureError as exc:
            address = self._address(scope)
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
        )
        try:
            stored = await self.inbox().accept(arrival, timeout=STORE_TIMEOUT)
        except InboxClosedError:
            await _error(send, scope, 503, "The server is shutting down; send it again.")
            return
        except Exception as exc:
            # The inbox logged the cause (without the body); the sender retries, and a
            # delivery stored after all is then answered as a duplicate.
            log.warning(
                "webhook %s: delivery %s not stored (%s)",
                source,
                arrival.delivery_id,
                type(exc).__name__,
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
        await _answer(send, scope, 200 if stored.duplicate else 202, _envelope(scope, data))

    def _address(self, scope: Scope) -> str | None:
        client = scope.get("client")
        if not client:
            return None
        peer = str(client[0])
        if not self.proxies:
            return peer
        forwarded = [
            value.decode("latin-1")
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
        ]
        return self.proxies.client(peer, forwarded) if forwarded else peer


_IDS = itertools.count()
_PROCESS = secrets.token_hex(5)


def _request_id(scope: Scope) -> str:
    """The sender's sane X-Request-ID, else `req_<process><counter>`: unique, like the
    API's random ids, without a read of the system's randomness on every delivery."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given: str = value.decode("latin-1")
            if sane_request_id(given):
                return given
            break
    return f"req_{_PROCESS}{next(_IDS):010x}"


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
    close: bool = False,
) -> None:
    body = {
        "status": "error",
        "error": {"code": code or ERROR_CODES[status], "message": message, "details": []},
        "meta": meta(scope),
    }
    extra = [(b"allow", allow.encode())] if allow else []
    if close:
        extra.append((b"connection", b"close"))
    await _answer(send, scope, status, orjson.dumps(body), extra)


_FIXED_HEADERS = [
    *((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS),
    (b"content-security-policy", STRICT_CSP.encode()),
]
"""What SecurityHeadersMiddleware adds to a JSON answer."""
_FIXED_HEAD = b"".join(b"%s: %s\r\n" % pair for pair in _FIXED_HEADERS)
_HEAD_START = b"content-type: application/json\r\nx-request-id: "


async def _answer(
    send: Send,
    scope: Scope,
    status: int,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    rid = request_id(scope).encode()
    extensions = scope.get("extensions")
    if extensions and WHOLE_ANSWER in extensions:
        # One message, the head's lines written here: every header below is fixed or
        # checked already (a request id is `sane_request_id`, or ours).
        close = False
        lines = [_HEAD_START, rid, b"\r\n", _FIXED_HEAD]
        for name, value in extra or ():
            if name == b"connection":
                close = True
            else:
                lines.append(b"%s: %s\r\n" % (name, value))
        await send(
            {
                "type": WHOLE_ANSWER,
                "status": status,
                "head": b"".join(lines),
                "body": body,
                "close": close,
            }
        )
        return
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid),
            *_FIXED_HEADERS,
            *(extra or []),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
