"""A response cycle that writes an answer's head together with its body: one socket write.

uvicorn's httptools cycle writes the status line and headers when the app sends
`http.response.start`, and the body with `http.response.body`: two `send` system calls
for every answer, which was a third of the event loop's time answering webhooks
(docs/benchmarks.md, "Webhook ingest"). `OneWriteCycle` holds the head back and writes
it in front of the first body part, so an answer of one body message (every answer of
the API, the webhook receiver and the dashboard) leaves in one write. A streamed answer
writes its head with its first part, then each part as before.

Nothing else changes: the head is built and checked by uvicorn's own code. An answer to
HEAD writes no body, so its head is written at once.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

__all__ = ["OneWriteCycle"]


class _HeldHead:
    """Stands in for the transport while uvicorn writes a head: keeps the bytes."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: bytes | None = None

    def write(self, data: bytes) -> None:
        self.data = data if self.data is None else self.data + data


class _HeadFirst:
    """Stands in for the transport while uvicorn writes a body part: the held head goes
    in front of the first write, and is written before the connection is closed."""

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

    _held: bytes | None = None

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            if self.scope["method"] == "HEAD":
                await super().send(message)
                return
            transport, held = self.transport, _HeldHead()
            self.transport = cast(asyncio.Transport, held)
            try:
                await super().send(message)
            finally:
                self.transport = transport
            self._held = held.data
            return
        head = self._held
        if head is None:
            await super().send(message)
            return
        self._held = None
        transport, first = self.transport, _HeadFirst(self.transport, head)
        self.transport = cast(asyncio.Transport, first)
        try:
            await super().send(message)
        finally:
            self.transport = transport
            first.flush()  # a body refused before its write: the head still goes out
