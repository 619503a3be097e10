"""uvicorn's HTTP/1.1 protocol on httptools (llhttp, in C), held to the h11 protocol's answers.

uvicorn answers about three times as many requests on httptools as on h11 (the bare
endpoint of docs/benchmarks.md, "Webhook ingest"). Left to itself, uvicorn's httptools
protocol answers what llhttp refuses with a text/plain 400, and llhttp accepts a few
requests h11 refuses. This protocol gives the
answers `EnvelopeH11Protocol` gives, in the same error envelope (request id, security
headers, `Connection: close`, then the connection closed), and never shows or logs what
llhttp said:

```
400 INVALID_REQUEST             malformed request line, header, Host, Content-Length or
                                chunked body; Content-Length with Transfer-Encoding; an
                                Upgrade request with a body
431 HEADERS_TOO_LARGE           request target and headers over the limit (16 KiB)
501 NOT_IMPLEMENTED             a Transfer-Encoding other than one `chunked`
505 HTTP_VERSION_NOT_SUPPORTED  a version llhttp does not know (HTTP/1.2), an HTTP/2 preface
```

What it checks on top of llhttp, because h11 does:

- exactly one `Host` (none is allowed on HTTP/1.0);
- `Transfer-Encoding` only as one `chunked` (llhttp takes `gzip, chunked`);
- the head limit (`h11_max_incomplete_event_size`, 16 KiB by default): the target and
  headers as the callbacks deliver them, and the bytes of a head still arriving, so a
  head that never ends is refused as soon as it passes the limit, like h11's;
- the request target goes into the scope as h11 gives it (`raw_path` is the target up
  to `?`), so an absolute-form target `http://host/path` is no route of ours, as under
  h11, instead of being routed as `/path`;
- a request with `Connection: upgrade` (and CONNECT) is served like any other, since
  nothing is upgraded here, and parsing goes on after it; llhttp would take whatever
  follows as the upgraded protocol's bytes. One that declares a body is refused: llhttp
  would read its body as the next request (request smuggling).

Where llhttp is stricter than h11 it stays so, and says 400: a method outside its list
(`FROB`, a lower-case `get`), the same `Content-Length` twice, a bare LF ending a line, a
folded header line. Use it with `uvicorn.Config(app, http=EnvelopeHttpToolsProtocol)`.
"""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn
from urllib.parse import unquote

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
)
from uvicorn.server import ServerState

from ._framing import MAX_HEAD
from ._one_write import WHOLE_ANSWER, OneWriteCycle
from ._refusal import Refusal, refusal_answer

__all__ = ["EnvelopeHttpToolsProtocol", "parser_problem"]

_ENCODING = "Only 'Transfer-Encoding: chunked', given once, is supported."
_HEADER = (
    "A header line is malformed (an invalid name, a control character such as NUL, a bare "
    "CR or LF, or a folded line)."
)
_REQUEST_LINE = "The request line is malformed; expected 'METHOD /path HTTP/1.1' in visible ASCII."
_VERSION = "This server speaks HTTP/1.1 (and 1.0)."

# (what llhttp's reason mentions, lower-cased; the answer), first match wins.
_PROBLEMS: tuple[tuple[str, Refusal], ...] = (
    (
        "can't be present with",
        Refusal(
            400,
            "Transfer-Encoding",
            "The request has both Content-Length and Transfer-Encoding; send one of them.",
        ),
    ),
    ("transfer-encoding", Refusal(501, "Transfer-Encoding", _ENCODING)),
    (
        "content-length",
        Refusal(
            400,
            "Content-Length",
            "Content-Length must be one non-negative number that matches the body.",
        ),
    ),
    ("invalid http version", Refusal(505, "HTTP version", _VERSION)),
    ("pri/upgrade", Refusal(505, "HTTP version", _VERSION)),  # the HTTP/2 preface
    ("chunk", Refusal(400, "body", "The chunked body is malformed.")),
    ("header", Refusal(400, "headers", _HEADER)),
    ("after start line", Refusal(400, "headers", _HEADER)),  # a folded first header line
    (
        "method",
        Refusal(
            400,
            "request line",
            "The method is not one this server knows, or has characters a method cannot have.",
        ),
    ),
    ("url", Refusal(400, "request line", _REQUEST_LINE)),
    ("version", Refusal(400, "request line", _REQUEST_LINE)),
    ("expected", Refusal(400, "request line", _REQUEST_LINE)),
)
_INVALID = Refusal(400, "request", "The request is not valid HTTP/1.1.")


def parser_problem(error: Exception) -> Refusal:
    """The answer to what llhttp refused; its own text is not passed on."""
    if isinstance(error, httptools.HttpParserCallbackError):
        return _INVALID  # one of our callbacks failed: nothing llhttp said applies
    text = str(error).lower()
    for needle, refusal in _PROBLEMS:
        if needle in text:
            return refusal
    return _INVALID


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the refusal is on the protocol."""


# Where the parser is in the current message.
_IDLE, _HEAD, _BODY = 0, 1, 2
_EXTENSIONS: dict[str, dict[object, object]] = {WHOLE_ANSWER: {}}
"""The ASGI extensions every request's scope offers (shared: an app reads, never writes)."""


class EnvelopeHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering what it refuses as `EnvelopeH11Protocol` does."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limit = config.h11_max_incomplete_event_size or MAX_HEAD
        self._phase = _IDLE
        self._head = 0  # bytes of target and headers the callbacks delivered
        self._arrived = 0  # bytes received while the head is incomplete
        self._begun = self._ended = 0  # messages begun and ended on this connection
        self._refusal: Refusal | None = None  # set by a callback before it raises _Refused
        self._refused = False  # parsing stopped: nothing more is read
        self._pending: Refusal | None = None  # answered once earlier requests are

    # -- reading ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._refused:
            return
        phase, begun, ended = self._phase, self._begun, self._ended
        rest = memoryview(data)
        while rest:
            try:
                self.parser.feed_data(rest)
            except httptools.HttpParserUpgrade as upgrade:
                if self._should_upgrade():  # a WebSocket, when uvicorn has them configured
                    self.handle_websocket_upgrade()
                    return
                # Nothing is upgraded: llhttp stopped after the request, parsing goes on.
                rest = rest[int(upgrade.args[0]) :]
                continue
            except httptools.HttpParserError as error:
                self.logger.warning("Invalid HTTP request received.")
                self._refuse(self._refusal or parser_problem(error))
                return
            break
        if self._phase == _HEAD:
            self._count_arrived(data, phase, begun, ended)

    def _count_arrived(self, data: bytes, phase: int, begun: int, ended: int) -> None:
        """Refuse a head still arriving once it passes the limit (h11 limits its buffer)."""
        if phase == _HEAD and begun == self._begun:
            self._arrived += len(data)  # all of it is more of the same head
        elif phase == _IDLE and ended == self._ended:
            self._arrived = len(data)  # the head began with these bytes
        else:
            # An earlier message ended in these bytes: the head is at least what the
            # callbacks counted and the line still open at the end.
            self._arrived = self._head + len(data) - data.rfind(b"\n") - 1
        if self._arrived > self.limit:
            self.logger.warning("Invalid HTTP request received.")
            self._refuse(self._too_large())

    def _too_large(self) -> Refusal:
        return Refusal(
            431,
            "headers",
            f"The request line and headers are larger than this server accepts "
            f"({self.limit} bytes).",
        )

    def _stop(self, refusal: Refusal) -> NoReturn:
        self._refusal = refusal
        raise _Refused

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEAD
        self._head = self._arrived = 0
        self._begun += 1

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._head += len(url)
        if self._head > self.limit:
            self._stop(self._too_large())

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head += len(name) + len(value) + 4  # ": " and CRLF, as FramingMiddleware counts
        if self._head > self.limit:
            self._stop(self._too_large())
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        parser = self.parser
        version = parser.get_http_version()
        upgrade = parser.should_upgrade()
        self._check_head(version, upgrade)
        self.scope["method"] = parser.get_method().decode("ascii")
        if version != "1.1":
            self.scope["http_version"] = version
        if upgrade and self._should_upgrade():
            return
        # The target as h11 splits it, not httptools.parse_url's path of an absolute URL.
        raw_path, _, query = self.url.partition(b"?")
        try:
            path = raw_path.decode("ascii")
        except UnicodeDecodeError:
            self._stop(Refusal(400, "request line", _REQUEST_LINE))
        if "%" in path:
            path = unquote(path)
        self.scope["path"] = self.root_path + path
        self.scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        self.scope["query_string"] = query

        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency
            or len(self.tasks) >= self.limit_concurrency
        ):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        else:
            app = self.app
        # Routes that may send an answer whole (OneWriteCycle, `interlink.whole_answer`).
        self.scope["extensions"] = _EXTENSIONS
        existing = self.cycle
        self.cycle = OneWriteCycle(
            scope=self.scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=version != "1.0" and parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        self._phase = _BODY
        if existing is None or existing.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:  # pipelined: runs when the answers before it are out
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))

    def _check_head(self, version: str, upgrade: bool) -> None:
        """Stop at what h11 refuses and llhttp lets through."""
        hosts = 0
        encodings: list[bytes] = []
        length = b""
        for name, value in self.headers:
            if name == b"host":
                hosts += 1
            elif name == b"transfer-encoding":
                encodings.append(value)
            elif name == b"content-length":
                length = value
        if encodings and (len(encodings) > 1 or encodings[0].strip().lower() != b"chunked"):
            self._stop(Refusal(501, "Transfer-Encoding", _ENCODING))
        if hosts > 1 or (hosts == 0 and version == "1.1"):
            self._stop(Refusal(400, "Host", "The request needs exactly one Host header."))
        if upgrade and (encodings or length.strip() not in (b"", b"0")):
            if not self._should_upgrade():
                self._stop(
                    Refusal(
                        400,
                        "Upgrade",
                        "A request asking to upgrade the connection cannot have a body here.",
                    )
                )

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _IDLE
        self._ended += 1

    # -- answering a refusal ---------------------------------------------------------------

    def _refuse(self, refusal: Refusal) -> None:
        """Answer `refusal` in its turn: after the answers to the requests before it."""
        self._refused = True
        current = self.cycle if self._phase == _BODY else None
        if current is not None:
            queued = next((entry for entry in self.pipeline if entry[0] is current), None)
            if queued is None:  # the app has this request
                if current.response_started:
                    current.transport.close()  # an answer is under way: its head, then closing
                else:
                    self._write(refusal)
                return
            self.pipeline.remove(queued)  # its place in line is the refusal's
            self._pending = refusal
            return
        if self.pipeline or (self.cycle is not None and not self.cycle.response_complete):
            self._pending = refusal
            return
        self._write(refusal)

    def on_response_complete(self) -> None:
        if self._pending is not None and not self.pipeline:
            self.server_state.total_requests += 1
            refusal, self._pending = self._pending, None
            if not self.transport.is_closing():
                self._write(refusal)
            return
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self._refused = True
        self._write(self._refusal or _INVALID)

    def _write(self, refusal: Refusal) -> None:
        headers, body = refusal_answer(refusal)
        content = [STATUS_LINE[refusal.status]]
        for name, value in headers:
            content += (name, b": ", value, b"\r\n")
        content += (b"\r\n", body)
        self.transport.write(b"".join(content))
        self.transport.close()
