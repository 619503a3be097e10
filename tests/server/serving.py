"""Start `interlink serve` as a real process on a free port, for tests that need sockets.

`interlink serve` picks its HTTP/1.1 parser with `--http` (auto: httptools when installed).
Tests that hold both parsers to the same answers pass `"--http", parser` for each of
`PARSERS`; INTERLINK_TEST_HTTP=h11 (or httptools) runs every other served test on that one.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import httpx

_URL = re.compile(r"interlink API on (http://\S+/api/v1)")

PARSERS = ("h11", "httptools")
"""The HTTP/1.1 parsers `interlink serve --http` runs on."""


class _Lines:
    """Every line a pipe gave, kept as it arrives by a thread (select() on a buffered text
    pipe misses lines already in Python's buffer)."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[str] = []
        self.ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._thread.start()

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    found = pattern.search(line)
                    if found:
                        return found
                left = deadline - time.monotonic()
                if self.ended or left <= 0:
                    return None
                self._changed.wait(left)

    def join(self) -> None:
        self._thread.join(timeout=5)


@dataclass
class Served:
    """One running `interlink serve`: its URL and everything it printed so far."""

    url: str
    process: subprocess.Popen[str]
    stdout: _Lines = field(repr=False)
    stderr: _Lines = field(repr=False)

    @property
    def banner(self) -> str:
        text = self.stdout.text()
        worker = text.find("\nworker:")
        return text if worker < 0 else text[: text.index("\n", worker + 1) + 1]

    @property
    def parser(self) -> str:
        """The HTTP/1.1 parser the server said it runs on (`http: h11` in its banner)."""
        found = re.search(r"^http: (\w+)", self.banner, re.MULTILINE)
        assert found is not None, self.banner
        return found.group(1)

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        assert parts.hostname is not None and parts.port is not None
        return parts.hostname, parts.port

    def output(self) -> str:
        """stdout (the banner and uvicorn's access log) and stderr, as printed so far."""
        return self.stdout.text() + self.stderr.text()

    def wait_logged(self, text: str, timeout: float = 5.0) -> bool:
        """Whether `text` appears on stdout within `timeout` (access lines lag a little)."""
        return self.stdout.wait_for(re.compile(re.escape(text)), timeout) is not None


@contextmanager
def serve_process(config: Path, *args: str, timeout: float = 20.0) -> Iterator[tuple[str, str]]:
    """Yield `(api url, first stdout lines)` once /health answers; SIGINT it afterwards."""
    with serve_processes(config, 1, *args, timeout=timeout) as started:
        yield started[0]


@contextmanager
def serve_processes(
    config: Path, count: int, *args: str, timeout: float = 20.0
) -> Iterator[list[tuple[str, str]]]:
    """Start `count` servers at once (they share the config's database); yield their
    `(api url, banner)` once each answers /health, and stop them all afterwards."""
    with serving(config, count, *args, timeout=timeout) as servers:
        yield [(served.url, served.banner) for served in servers]


@contextmanager
def serve_live(config: Path, *args: str, timeout: float = 20.0) -> Iterator[Served]:
    """One server, with its output kept: pass `"--log-level", "info"` for the access log."""
    with serving(config, 1, *args, timeout=timeout) as servers:
        yield servers[0]


@contextmanager
def serving(config: Path, count: int, *args: str, timeout: float = 20.0) -> Iterator[list[Served]]:
    command = [
        sys.executable,
        "-c",
        "from interlink.cli.main import main; main()",
        "serve",
        "--config",
        str(config),
        "--port",
        "0",
        "--log-level",
        "warning",
        *args,
    ]
    chosen = os.environ.get("INTERLINK_TEST_HTTP")
    if chosen and "--http" not in args:
        command += ["--http", chosen]
    processes = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        for _ in range(count)
    ]
    servers: list[Served] = []
    try:
        for process in processes:
            assert process.stdout is not None and process.stderr is not None
            stdout, stderr = _Lines(process.stdout), _Lines(process.stderr)
            found = stdout.wait_for(_URL, timeout)
            if found is None or stdout.wait_for(re.compile(r"^worker:"), timeout) is None:
                raise AssertionError(
                    f"no URL from interlink serve: {stdout.text()} {stderr.text()}"
                )
            servers.append(Served(found.group(1), process, stdout, stderr))
        for served in servers:
            _wait_healthy(served, timeout)
        yield servers
    finally:
        for process in processes:
            _stop(process)
        for served in servers:
            served.stdout.join()
            served.stderr.join()
        for process in processes:
            assert process.stdout is not None and process.stderr is not None
            process.stdout.close()
            process.stderr.close()


def _wait_healthy(served: Served, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{served.url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or served.process.poll() is not None:
            raise AssertionError(f"interlink serve did not answer: {served.stderr.text()[-2000:]}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class RawAnswer:
    """What came back on a raw socket: the status, the headers (lower-cased), the body,
    and whether the server closed the connection."""

    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes
    closed: bool


def raw_request(
    address: tuple[str, int],
    data: bytes | list[bytes],
    *,
    timeout: float = 5.0,
    pause: float = 0.1,
) -> RawAnswer:
    """Send `data` as it is (a list: piece by piece, `pause` seconds apart) and read one
    answer (and anything after it, until the server closes or stays silent for a moment)."""
    pieces = [data] if isinstance(data, bytes) else data
    with socket.create_connection(address, timeout=timeout) as sock:
        for index, piece in enumerate(pieces):
            if index:
                time.sleep(pause)
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server refused what came so far and closed
        received = b""
        closed = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(0.5 if _complete(received) else max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if _complete(received):
                    break
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawAnswer(status, headers, body, received, closed)


def _complete(received: bytes) -> bool:
    head, sep, body = received.partition(b"\r\n\r\n")
    if not sep:
        return False
    found = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    return found is None or len(body) >= int(found.group(1))
