"""Start `interlink serve` as a real process on a free port, for tests that need sockets."""

from __future__ import annotations

import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

_URL = re.compile(r"interlink API on (http://\S+/api/v1)")


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
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    process.stderr.close()


def _read_url(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.2):
                if process.poll() is not None:
                    break
                continue
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = _URL.search(line)
            if found:
                # The worker line follows the URL line at once.
                if selector.select(timeout=2):
                    lines.append(process.stdout.readline())
                return found.group(1), "".join(lines)
    finally:
        selector.close()
    raise AssertionError(f"no URL from interlink serve: {''.join(lines)} {_stderr(process)}")


def _stderr(process: subprocess.Popen[str]) -> str:
    if process.poll() is None or process.stderr is None:
        return "(still running)"
    return process.stderr.read()[-2000:]
