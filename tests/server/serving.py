"""Start `interlink serve` as a real process on a free port, for tests that need sockets."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

_URL = re.compile(r"interlink API on (http://\S+/api/v1)")
_READERS: dict[int, threading.Thread] = {}


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
    processes = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        for _ in range(count)
    ]
    try:
        started = [_read_url(process, timeout) for process in processes]
        for process, (url, _) in zip(processes, started, strict=True):
            _wait_healthy(process, url, timeout)
        yield started
    finally:
        for process in processes:
            _stop(process)


def _wait_healthy(process: subprocess.Popen[str], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise AssertionError(f"interlink serve did not answer: {_stderr(process)}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    reader = _READERS.pop(process.pid, None)
    if reader is not None:
        reader.join(timeout=5)  # it ends at EOF; close the pipe only after that
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    process.stderr.close()


def _read_url(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """The URL from serve's first line and the banner up to the worker line. A thread reads
    stdout: select() on a buffered text pipe misses lines already in Python's buffer."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    _READERS[process.pid] = reader
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    url = None
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if not line:
            break
        seen.append(line)
        found = _URL.search(line)
        if found:
            url = found.group(1)
        if url and line.startswith("worker:"):
            return url, "".join(seen)
    raise AssertionError(f"no URL from interlink serve: {''.join(seen)} {_stderr(process)}")


def _stderr(process: subprocess.Popen[str]) -> str:
    if process.poll() is None or process.stderr is None:
        return "(still running)"
    return process.stderr.read()[-2000:]
