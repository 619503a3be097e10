"""A response cycle that writes an answer's head together with its body: one socket write.

uvicorn's httptools cycle writes the status line and headers when the app sends
`http.response.start`, and the body with `http.response.body`: two `send` system calls
for every answer, which was a third of the event loop's time answering webhooks
(docs/benchmarks.md, "Webhook ingest"). `OneWriteCycle` holds the head back and writes
it in front of the first body part, so an answer of one body message (every answer of
the API, the webhook receiver and the dashboard) leaves in one write. A streamed answer
writes its head with its first part, then each part as before.

Nothing else changes: the head is built and checked by uvicorn's own code, and the bytes
on the wire are uvicorn's. From `http.response.start` to the first body part the cycle's
transport is a `_HeadFirst`, which writes the held head before anything else and before
the connection is closed: an app that fails or returns after starting its answer (uvicorn
then closes the connection) still sends the head first, as uvicorn's own cycle does; a
204 or 304 whose app never sends a body is still a whole answer. An answer to HEAD writes
no body, so its head is written at once.

A route that builds its answers from headers it trusts (the webhook receiver: every
answer the same few fixed headers) may send one `interlink.whole_answer` message instead
of the two, when the scope's `extensions` offer it (`WHOLE_ANSWER`):

```python
{"type": "interlink.whole_answer", "status": 202, "head": b"content-type: ...\r\n...",
 "body": b"...", "close": False}
```

`head` is header lines the route vouches for (lower-case names, each ending in CRLF,
without content-length, transfer-encoding or connection: the cycle writes those); the
cycle writes the status line, the server's default headers, `head`, the body's
content-length and the body in one write, and completes the answer as uvicorn's own
cycle does. It skips uvicorn's check of every header against its patterns, which was a
fifth of a webhook's answer.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

__all__ = ["WHOLE_ANSWER", "OneWriteCycle"]

WHOLE_ANSWER = "interlink.whole_answer"
"""The message type (and the scope extension offering it) of an answer sent whole."""


class _HeldHead:
    """Stands in for the transport while uvicorn writes a head: keeps the bytes."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: bytes | None = None

    def write(self, data: bytes) -> None:
        self.data = data if self.data is None else self.data + data


class _HeadFirst:
    """The cycle's transport while a head is held: the head goes in front of the first
    write, and out before the connection is closed; everything else is the transport's."""

    __slots__ = ("head", "transport")

    def __init__(self, transport: Any, head: bytes) -> None:
        self.transport = transport
        self.head: bytes | None = head

    def write(self, data: bytes) -> None:
        head, self.head = self.head, None
        self.transport.write(data if head is None else head + data)

    def flush(self) -> None:
        head, self.head = self.head, None
        if head is not None and not self.transport.is_closing():
            self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's cycle, with the head of an answer written in front of its body."""

    def flush_head(self) -> None:
        """Write a held head now (the connection is about to be closed under the cycle)."""
        if isinstance(self.transport, _HeadFirst):
            self.transport.flush()

    async def send(self, message: Any) -> None:
        if message["type"] == WHOLE_ANSWER:
            await self._send_whole(message)
            return
        if (
            message["type"] == "http.response.start"
            and not self.response_started
            and self.scope["method"] != "HEAD"
        ):
            # Wait for a paused transport here, with the real transport in place: uvicorn
            # would wait inside its send, where `receive` or a close would meet the keeper.
            if self.flow.write_paused and not self.disconnected:
                await self.flow.drain()
            transport, keeper = self.transport, _HeldHead()
            self.transport = keeper  # type: ignore[assignment]
            try:
                await super().send(message)  # no wait left in it: nothing else sees keeper
            finally:
                self.transport = transport
            if keeper.data is not None:
                self.transport = _HeadFirst(transport, keeper.data)  # type: ignore[assignment]
            return
        first = self.transport
        if not isinstance(first, _HeadFirst):
            await super().send(message)
            return
        try:
            await super().send(message)
        finally:
            if self.transport is first:
                self.transport = first.transport
            first.flush()  # a body refused before its write: the head still goes out

    async def _send_whole(self, message: Any) -> None:
        """Write an `interlink.whole_answer`: head and body in one write, then done."""
        if self.response_started:
            raise RuntimeError(f"{WHOLE_ANSWER} after the answer was started")
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        self.response_started = True
        self.waiting_for_100_continue = False
        status: int = message["status"]
        body: bytes = message.get("body", b"")
        if self.access_log:
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(self.scope),
                self.scope["method"],
                get_path_with_query_string(self.scope),
                self.scope["http_version"],
                status,
            )
        if message.get("close"):
            self.keep_alive = False
        parts = [STATUS_LINE[status]]
        parts.extend(b"%s: %s\r\n" % (name.lower(), value) for name, value in self.default_headers)
        parts.append(message["head"])
        parts.append(b"content-length: %d\r\n" % len(body))
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if self.scope["method"] != "HEAD":
            parts.append(body)
        self.transport.write(b"".join(parts))
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()
