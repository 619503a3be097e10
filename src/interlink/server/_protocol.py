"""uvicorn's HTTP/1.1 protocol (h11), answering requests it cannot parse in the envelope.

uvicorn parses each request with h11 before the app sees anything. A request h11 refuses
(a negative or doubled `Content-Length`, a transfer coding other than chunked, a NUL or a
bare CR in a header, a request line that is not `METHOD /path HTTP/1.1`, headers over
`h11_max_incomplete_event_size`) never becomes an ASGI request: uvicorn answers it itself
with a text/plain 400 "Invalid HTTP request received." This protocol answers the same
requests with the API's error envelope, the documented status and code, a request id and
the security headers, then closes the connection as uvicorn does:

```
400 INVALID_REQUEST      malformed request line, header, Host, Content-Length or chunked body
431 HEADERS_TOO_LARGE    request line and headers over the limit (16 KiB by default)
501 NOT_IMPLEMENTED      a Transfer-Encoding other than one `chunked`
```

h11's own messages are never shown or logged: they quote the offending bytes, which may
be a credential. Use it with `uvicorn.Config(app, http=EnvelopeH11Protocol)`.
`_protocol_httptools.py` holds the httptools protocol to the same answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol
from uvicorn.server import ServerState

from ._refusal import Refusal, refusal_answer

__all__ = ["EnvelopeH11Protocol", "protocol_problem"]

# (what h11's message mentions, status, field, what the client is told), first match wins.
_PROBLEMS: tuple[tuple[str, int, str, str], ...] = (
    (
        "receive buffer too long",
        431,
        "headers",
        "The request line and headers are larger than this server accepts ({limit} bytes).",
    ),
    (
        "content-length",
        400,
        "Content-Length",
        "Content-Length must be one non-negative number that matches the body.",
    ),
    (
        "transfer-encoding",
        501,
        "Transfer-Encoding",
        "Only 'Transfer-Encoding: chunked', given once, is supported.",
    ),
    ("host", 400, "Host", "The request needs exactly one Host header."),
    (
        "header",
        400,
        "headers",
        "A header line is malformed (an invalid name, a control character such as NUL or a "
        "bare CR in its value, or a folded line).",
    ),
    (
        "continuation line",
        400,
        "headers",
        "A header line is malformed (a folded line at the start of the headers).",
    ),
    (
        "request line",
        400,
        "request line",
        "The request line is malformed; expected 'METHOD /path HTTP/1.1' in visible ASCII.",
    ),
    ("method", 400, "request line", "The method has characters a method cannot have."),
    ("chunk", 400, "body", "The chunked body is malformed."),
)


def protocol_problem(error: Exception | None, limit: int) -> tuple[int, str, str]:
    """`(status, field, message)` for what h11 refused; its own text is not passed on."""
    text = str(error or "").lower()
    for needle, status, field, message in _PROBLEMS:
        if needle in text:
            return status, field, message.format(limit=limit)
    return 400, "request", "The request is not valid HTTP/1.1."


class _Connection(h11.Connection):
    """h11's server connection, remembering the protocol error it raised last (uvicorn
    catches it and keeps nothing of it)."""

    error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise


class EnvelopeH11Protocol(H11Protocol):
    """uvicorn's h11 protocol whose own 400s are the API's error envelope."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limit = config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self.conn = _Connection(h11.SERVER, self.limit)

    def send_400_response(self, msg: str) -> None:
        conn = self.conn
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            self.transport.close()  # an answer is already under way: only closing is left
            return
        error = conn.error if isinstance(conn, _Connection) else None
        status, field, message = protocol_problem(error, self.limit)
        headers, body = refusal_answer(Refusal(status, field, message))
        for event in (
            h11.Response(status_code=status, headers=headers, reason=STATUS_PHRASES[status]),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(conn.send(event) or b"")
        self.transport.close()
