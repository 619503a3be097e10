"""An answer's head leaves with its body in one socket write (server/_one_write.py)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import orjson
import pytest
import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl

from interlink.server._one_write import OneWriteCycle
from interlink.server._protocol_httptools import EnvelopeHttpToolsProtocol


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed_after: int | None = None

    def write(self, data: bytes) -> None:  # type: ignore[override]
        assert self.closed_after is None, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed_after = len(self.writes)

    def is_closing(self) -> bool:
        return self.closed_after is not None

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def _cycle(transport: _Transport, *, method: str = "POST", keep_alive: bool = True):
    done: list[bool] = []
    cycle = OneWriteCycle(
        scope={"type": "http", "method": method, "http_version": "1.1", "path": "/"},
        transport=transport,
        flow=FlowControl(transport),
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test.access"),
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=keep_alive,
        on_response=lambda: done.append(True),
    )
    return cycle, done


def _start(length: int | None) -> dict:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": 202, "headers": headers}


async def test_head_and_body_leave_in_one_write():
    transport = _Transport()
    cycle, done = _cycle(transport)
    await cycle.send(_start(7))
    assert transport.writes == []  # the head waits for its body
    await cycle.send({"type": "http.response.body", "body": b'{"a":1}'})
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 202 Accepted\r\n")
    assert b"content-length: 7" in head
    assert body == b'{"a":1}'
    assert done == [True] and transport.closed_after is None


async def test_a_streamed_answer_writes_its_head_with_the_first_part():
    transport = _Transport()
    cycle, _ = _cycle(transport)
    await cycle.send(_start(None))  # chunked
    await cycle.send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await cycle.send({"type": "http.response.body", "body": b"de", "more_body": False})
    assert len(transport.writes) == 2
    assert transport.writes[0].endswith(b"\r\n\r\n3\r\nabc\r\n")
    assert b"transfer-encoding: chunked" in transport.writes[0]
    assert transport.writes[1] == b"2\r\nde\r\n0\r\n\r\n"


async def test_closing_after_the_answer_writes_first_then_closes():
    transport = _Transport()
    cycle, _ = _cycle(transport, keep_alive=False)
    await cycle.send(_start(2))
    await cycle.send({"type": "http.response.body", "body": b"ok"})
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\nok")
    assert b"connection: close" in transport.writes[0]
    assert transport.closed_after == 1


async def test_an_answer_to_head_writes_its_head_at_once():
    transport = _Transport()
    cycle, done = _cycle(transport, method="HEAD")
    await cycle.send(_start(7))
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\n")
    await cycle.send({"type": "http.response.body", "body": b""})
    assert len(transport.writes) == 1 and done == [True]


async def test_a_body_uvicorn_refuses_still_sends_the_head():
    transport = _Transport()
    cycle, _ = _cycle(transport)
    await cycle.send(_start(1))
    with pytest.raises(RuntimeError, match="longer than Content-Length"):
        await cycle.send({"type": "http.response.body", "body": b"too long"})
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\n")


async def _app(scope, receive, send):
    body = b'{"data": "ok"}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def test_the_httptools_protocol_answers_with_one_write(monkeypatch):
    """Through a real server: each answer of three keep-alive requests is one write."""
    writes: list[bytes] = []
    original = OneWriteCycle.__init__

    def spying(self, *args, **kwargs):
        original(self, *args, **kwargs)
        real = self.transport

        class Spy:
            def __getattr__(self, name):
                return getattr(real, name)

            def write(self, data):
                writes.append(bytes(data))
                real.write(data)

        self.transport = Spy()

    monkeypatch.setattr(OneWriteCycle, "__init__", spying)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(_app, http=EnvelopeHttpToolsProtocol, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            for _ in range(3):
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                while not answer.endswith(b'{"data": "ok"}'):
                    answer += client.recv(65536)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert len(writes) == 3, writes
    assert all(w.startswith(b"HTTP/1.1 200 OK") and w.endswith(b'"ok"}') for w in writes)


def _whole(status: int = 202, body: bytes = b'{"a":1}', **extra) -> dict:
    head = b"content-type: application/json\r\nx-request-id: req_1\r\n"
    return {"type": "interlink.whole_answer", "status": status, "head": head, "body": body} | extra


async def test_a_whole_answer_is_one_write_and_completes_the_answer():
    transport = _Transport()
    cycle, done = _cycle(transport)
    cycle.default_headers = [(b"Server", b"interlink-test")]
    await cycle.send(_whole())
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 202 Accepted",
        b"server: interlink-test",
        b"content-type: application/json",
        b"x-request-id: req_1",
        b"content-length: 7",
    ]
    assert body == b'{"a":1}'
    assert done == [True] and cycle.response_complete and transport.closed_after is None
    with pytest.raises(RuntimeError, match="after the answer was started"):
        await cycle.send(_whole())


async def test_a_whole_answer_that_closes_says_so_and_closes():
    for keep_alive, close in ((True, True), (False, False)):
        transport = _Transport()
        cycle, _ = _cycle(transport, keep_alive=keep_alive)
        await cycle.send(_whole(413, b"{}", close=close))
        assert b"connection: close\r\n" in transport.writes[0]
        assert transport.writes[0].startswith(b"HTTP/1.1 413 ")
        assert transport.closed_after == 1


async def test_a_whole_answer_to_head_has_no_body_and_a_gone_client_gets_nothing():
    transport = _Transport()
    cycle, done = _cycle(transport, method="HEAD")
    await cycle.send(_whole())
    assert transport.writes[0].endswith(b"content-length: 7\r\n\r\n") and done == [True]
    transport = _Transport()
    cycle, done = _cycle(transport)
    cycle.disconnected = True
    await cycle.send(_whole())
    assert transport.writes == [] and done == []


@pytest.mark.parametrize("request_id", [None, "abc-1.2:3"])
def test_webhook_answers_sent_whole_match_those_sent_as_two_messages(tmp_path, request_id):
    """The receiver sends its answers whole on httptools (the scope offers it) and as
    start + body on h11: through real `interlink serve` processes, the two parsers give
    the same statuses, the same headers (bar the date) and the same bodies, for an
    accepted delivery, its duplicate, a bad signature and a body over max_body."""
    from interlink.config import InterlinkConfig
    from interlink.webhooks import sign
    from tests.server.serving import raw_request, serve_live
    from tests.webhooks.conftest import STANDARD_SECRET

    config = tmp_path / "interlink.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'hooks.db'}\n"
        "webhooks:\n  shop:\n    scheme: standard\n"
        f"    secret: {STANDARD_SECRET}\n    max_body: 2KB\n"
    )
    source = InterlinkConfig.model_validate(
        {"webhooks": {"shop": {"scheme": "standard", "secret": STANDARD_SECRET}}}
    ).webhooks["shop"]

    def request(parser: str, body: bytes, *, good: bool = True) -> bytes:
        headers = sign(source, body, timestamp=int(time.time()), delivery_id=f"m_{parser[:2]}")
        if not good:
            headers["webhook-signature"] = "v1," + "A" * 43 + "="
        if request_id:
            headers["x-request-id"] = request_id
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return (
            f"POST /api/v1/webhooks/shop HTTP/1.1\r\nHost: t\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    answers: dict[str, list[tuple[int, dict[str, str], dict]]] = {}
    for parser in ("httptools", "h11"):
        small = b'{"type":"t","id":"e"}'
        with serve_live(config, "--no-worker", "--http", parser) as served:
            got = [
                raw_request(served.address, request(parser, small)),
                raw_request(served.address, request(parser, small)),
                raw_request(served.address, request(parser, small, good=False)),
                raw_request(served.address, request(parser, b"x" * 3000)),
            ]
        answers[parser] = [
            (
                a.status,
                {k: v for k, v in a.headers.items() if k not in ("date", "x-request-id")},
                orjson.loads(a.body),
            )
            for a in got
        ]
        if request_id:
            assert {a.headers["x-request-id"] for a in got} == {request_id}
        else:
            assert all(a.headers["x-request-id"].startswith("req_") for a in got)
        assert got[3].closed
    for (status, headers, body), (status_h11, headers_h11, body_h11) in zip(
        answers["httptools"], answers["h11"], strict=True
    ):
        assert status == status_h11
        assert headers == headers_h11
        for envelope in (body, body_h11):
            envelope["meta"].pop("timestamp")
            envelope["meta"].pop("request_id")
            if "data" in envelope:
                envelope["data"].pop("delivery_id")
                envelope["data"].pop("id")
        assert body == body_h11
    assert [s for s, _, _ in answers["httptools"]] == [202, 200, 401, 413]
    assert answers["httptools"][0][1]["x-content-type-options"] == "nosniff"
