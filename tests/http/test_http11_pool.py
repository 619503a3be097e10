"""Http11Pool (the thread transport's connections) against a real TCP server on
127.0.0.1 whose every answer is scripted bytes: keep-alive, connections the server closed
while idle or in the instant after the check, answers without a length, cut short or
chunked, timeouts, expiry and the idle limit. Each test counts the connections the
server accepted, so a reuse (or a new connection) is seen, not assumed."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from interlink.http import _http11_pool as pool_module
from interlink.http._http11_pool import Http11Pool

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


@dataclass
class Seen:
    """One request as the server read it."""

    connection: int
    head: bytes
    body: bytes


@dataclass
class RawServer:
    """Answers request n (counted from 0 over all connections) with `script(n)`:
    the bytes to send (None: send nothing) and whether to close the connection then."""

    script: Callable[[int], tuple[bytes | None, bool]]
    seen: list[Seen] = field(default_factory=list)
    accepted: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                number = self.accepted
                self.accepted += 1
            thread = threading.Thread(target=self._serve, args=(sock, number), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket, number: int) -> None:
        sock.settimeout(5)
        buffer = b""
        with sock:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    try:
                        chunk = sock.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += sock.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                with self._lock:
                    index = len(self.seen)
                    self.seen.append(Seen(number, head, body))
                answer, close = self.script(index)
                if answer is not None:
                    sock.sendall(answer)
                if close:
                    return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=6)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[int], tuple[bytes | None, bool]]], RawServer]]:
    servers: list[RawServer] = []

    def start(script: Callable[[int], tuple[bytes | None, bool]]) -> RawServer:
        server = RawServer(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def make_pool() -> Iterator[Callable[..., Http11Pool]]:
    """Pools closed at the end of the test: no socket is left for the collector."""
    pools: list[Http11Pool] = []

    def make(**kwargs: object) -> Http11Pool:
        pool = Http11Pool(**kwargs)  # type: ignore[arg-type]
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def _get(pool: Http11Pool, url: str, **kwargs: object) -> httpx.Response:
    return pool.send(httpx.Request("GET", url, **kwargs))  # type: ignore[arg-type]


def test_sequential_requests_share_one_connection(serve, make_pool):
    server = serve(lambda n: (OK, False))
    pool = make_pool()
    for _ in range(3):
        response = _get(pool, f"{server.url}/x?q=a%20b")
        assert response.status_code == 200 and response.content == b"ok"
    assert server.accepted == 1
    assert server.seen[0].head.startswith(b"GET /x?q=a%20b HTTP/1.1\r\n")
    assert pool.idle == 1
    pool.close()
    assert pool.idle == 0


def test_a_connection_the_server_closed_while_idle_is_not_reused(serve, make_pool, monkeypatch):
    server = serve(lambda n: (OK, True))  # closes after each answer, without saying so
    checks: list[bool] = []
    real = pool_module._Connection.dropped
    monkeypatch.setattr(
        pool_module._Connection, "dropped", lambda self: checks.append(real(self)) or checks[-1]
    )
    pool = make_pool()
    assert _get(pool, server.url).content == b"ok"
    # The close arrives before the next request is sent: the check sees it.
    for _ in range(50):
        if server.seen and len(server._threads) >= 2 and not server._threads[1].is_alive():
            break
        threading.Event().wait(0.01)
    assert _get(pool, server.url).content == b"ok"
    assert server.accepted == 2
    assert checks == [True], "the check found the connection closed"
    assert len(server.seen) == 2, "nothing was sent on the closed connection"


def test_an_idempotent_request_is_sent_again_when_its_reused_connection_was_closed(
    serve, make_pool
):
    # The server takes the second request on the kept connection and closes it
    # without an answer: what a keep-alive timeout racing the request looks like.
    server = serve(lambda n: (None, True) if n == 1 else (OK, False))
    pool = make_pool()
    assert _get(pool, server.url).content == b"ok"
    assert _get(pool, server.url).content == b"ok"
    assert server.accepted == 2
    assert [s.connection for s in server.seen] == [0, 0, 1]


def test_a_post_on_a_closed_reused_connection_is_not_sent_again(serve, make_pool):
    server = serve(lambda n: (None, True) if n == 1 else (OK, False))
    pool = make_pool()
    assert _get(pool, server.url).content == b"ok"
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        pool.send(httpx.Request("POST", server.url, content=b"{}"))
    assert len(server.seen) == 2, "the POST went out once"


def test_a_new_connection_closed_without_an_answer_is_an_error_not_a_resend(serve, make_pool):
    server = serve(lambda n: (None, True))
    pool = make_pool()
    with pytest.raises(httpx.RemoteProtocolError):
        _get(pool, server.url)
    assert len(server.seen) == 1


def test_connection_close_is_honoured(serve, make_pool):
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    server = serve(lambda n: (answer, True))
    pool = make_pool()
    assert _get(pool, server.url).content == b"ok"
    assert pool.idle == 0
    assert _get(pool, server.url).content == b"ok"
    assert server.accepted == 2


def test_an_answer_without_a_length_is_read_to_the_close(serve, make_pool):
    server = serve(lambda n: (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 100_000, True))
    pool = make_pool()
    response = _get(pool, server.url)
    assert response.content == b"x" * 100_000
    assert pool.idle == 0, "a connection read to its end is not kept"


def test_a_chunked_answer_is_joined_and_its_connection_kept(serve, make_pool):
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    server = serve(lambda n: (chunked, False))
    pool = make_pool()
    assert _get(pool, server.url).content == b"hello world"
    assert _get(pool, server.url).content == b"hello world"
    assert server.accepted == 1


def test_an_answer_cut_short_is_a_protocol_error(serve, make_pool):
    server = serve(lambda n: (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten!!", True))
    pool = make_pool()
    with pytest.raises(httpx.RemoteProtocolError, match="10 bytes into an answer"):
        _get(pool, server.url)
    assert pool.idle == 0


def test_headers_come_back_in_order_with_repeats(serve, make_pool):
    answer = (
        b"HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nX-Rate: 5\r\nSet-Cookie: b=2\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    server = serve(lambda n: (answer, False))
    response = _get(make_pool(), server.url)
    assert response.status_code == 201
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.extensions["reason_phrase"] == b"Created"
    assert response.extensions["http_version"] == b"HTTP/1.1"


def test_request_headers_and_body_go_as_given(serve, make_pool):
    server = serve(lambda n: (OK, False))
    pool = make_pool()
    request = httpx.Request("POST", f"{server.url}/p", headers={"X-Key": "v"}, json={"a": "é"})
    pool.send(request)
    seen = server.seen[0]
    lines = seen.head.split(b"\r\n")
    assert lines[0] == b"POST /p HTTP/1.1"
    assert sum(1 for line in lines if line.lower().startswith(b"host:")) == 1
    assert b"X-Key: v" in lines
    assert seen.body == request.content


def test_a_streamed_body_is_sent_whole_with_its_length(serve, make_pool):
    server = serve(lambda n: (OK, False))
    pool = make_pool()

    def parts() -> Iterator[bytes]:
        yield b"abc"
        yield b"def"

    request = httpx.Request("PUT", server.url, content=parts())
    assert request.headers["transfer-encoding"] == "chunked"
    pool.send(request)
    head = server.seen[0].head.lower()
    assert b"transfer-encoding" not in head and b"content-length: 6" in head
    assert server.seen[0].body == b"abcdef"


def test_head_reads_no_body_and_keeps_the_connection(serve, make_pool):
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    server = serve(lambda n: (answer if n == 0 else OK, False))
    pool = make_pool()
    assert pool.send(httpx.Request("HEAD", server.url)).content == b""
    assert _get(pool, server.url).content == b"ok"
    assert server.accepted == 1


def test_read_timeout(serve, make_pool):
    server = serve(lambda n: (None, False))  # never answers
    pool = make_pool()
    timeout = httpx.Timeout(5.0, read=0.2).as_dict()
    with pytest.raises(httpx.ReadTimeout):
        _get(pool, server.url, extensions={"timeout": timeout})
    assert pool.idle == 0


def test_connection_refused_is_a_connect_error(make_pool):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        _get(make_pool(), f"http://127.0.0.1:{port}/")


def test_an_idle_connection_expires(serve, make_pool):
    server = serve(lambda n: (OK, False))
    now = [100.0]
    pool = make_pool(keepalive_expiry=15.0, clock=lambda: now[0])
    _get(pool, server.url)
    now[0] += 10
    _get(pool, server.url)
    assert server.accepted == 1, "10 s idle is within the expiry"
    now[0] += 16
    _get(pool, server.url)
    assert server.accepted == 2


def test_the_pool_keeps_at_most_max_idle_connections(serve, make_pool):
    first = serve(lambda n: (OK, False))
    second = serve(lambda n: (OK, False))
    pool = make_pool(max_idle=1)
    _get(pool, first.url)
    _get(pool, second.url)
    assert pool.idle == 1
    _get(pool, second.url)
    _get(pool, first.url)
    assert (first.accepted, second.accepted) == (2, 1), "the older one was closed"


def test_a_connection_back_after_close_is_closed(serve, make_pool):
    server = serve(lambda n: (OK, False))
    pool = make_pool()
    pool.close()
    _get(pool, server.url)
    assert pool.idle == 0


def test_only_http_and_https_are_sent(make_pool):
    with pytest.raises(httpx.UnsupportedProtocol):
        _get(make_pool(), "ftp://127.0.0.1/x")
