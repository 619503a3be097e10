"""A socket on 127.0.0.1 that speaks just enough of PostgreSQL's protocol to refuse a
password, the way a real server with `md5`/`scram` in pg_hba.conf does (the test server
trusts every local connection, so it cannot)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


def _read_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def _error(message: str) -> bytes:
    fields = b"SFATAL\x00VFATAL\x00C28P01\x00M" + message.encode() + b"\x00\x00"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


def _handle(conn: socket.socket, received: list[bytes]) -> None:
    with conn:
        while True:
            (length,) = struct.unpack("!I", _read_exact(conn, 4))
            body = _read_exact(conn, length - 4)
            (code,) = struct.unpack("!I", body[:4])
            if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                conn.sendall(b"N")  # no TLS, no GSS: go on in plain text
                continue
            break
        user = body[4:].split(b"\x00")
        name = user[user.index(b"user") + 1].decode() if b"user" in user else "?"
        conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
        if _read_exact(conn, 1) != b"p":
            return
        (length,) = struct.unpack("!I", _read_exact(conn, 4))
        received.append(_read_exact(conn, length - 4).rstrip(b"\x00"))
        conn.sendall(_error(f'password authentication failed for user "{name}"'))


@contextmanager
def refusing_postgres() -> Iterator[tuple[int, list[bytes]]]:
    """Yield the port of a server that refuses every password, and the passwords it got."""
    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                _handle(conn, received)
            except (OSError, ConnectionError, struct.error):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
