"""Serving sandbox apps with uvicorn: in a background thread for tests, or in the foreground.

`SandboxServer` binds its socket before the server thread starts, so the port is known at
once (port 0 picks a free one), and `start()` returns only when uvicorn is listening.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Unpack

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import LOGGING_CONFIG

from ._faults import DroppedConnectionError, FaultConfig
from ._shop import ShopOptions, create_shop_app
from ._suite import create_sandbox_app
from ._webhook_signing import WebhookTarget
from ._webhooks import WebhookSender

__all__ = ["SandboxServer", "run_sandbox", "run_sandbox_suite"]

# A slow fault still in flight at shutdown is cancelled after this many seconds.
_GRACEFUL_SHUTDOWN_SECONDS = 2


class _DroppedConnectionFilter(logging.Filter):
    """Keeps uvicorn from logging each injected drop as an application error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, DroppedConnectionError)


def _quiet_dropped_connections() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DroppedConnectionFilter) for f in logger.filters):
        logger.addFilter(_DroppedConnectionFilter())


def _config(app: ASGIApp, host: str, port: int, *, own_logging: bool) -> uvicorn.Config:
    # h11 is pinned because the way faults drop connections was verified against it (and
    # against httptools); "auto" would switch protocol when httptools gets installed.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http="h11",
        ws="none",
        loop="asyncio",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
        # In-process servers leave handlers to the host program (pytest's log capture among
        # them); a foreground server installs uvicorn's usual stderr logging.
        log_config=LOGGING_CONFIG if own_logging else None,
    )
    _quiet_dropped_connections()
    return config


class SandboxServer:
    """Serve an ASGI app on a local port from a background thread, for tests and demos.

    ```python
    with SandboxServer(create_shop_app(records=500)) as server:
        response = httpx.get(f"{server.url}/customers")

    async with SandboxServer(create_shop_app()) as server:
        ...
    ```
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, such as `http://127.0.0.1:54321`; the port is known after `start()`."""
        if self._server is None:
            raise RuntimeError("the sandbox server is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Start serving and return once the server accepts connections."""
        if self._server is not None:
            raise RuntimeError("the sandbox server is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on accepted connections
        # only when the listening socket says TCP, and without it every small response
        # waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            # As uvicorn does: a restart on a fixed port must not wait for TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(_config(self.app, self.host, self.port, own_logging=False))
        errors: list[BaseException] = []
        thread = threading.Thread(
            target=self._serve,
            args=(server, sock, errors),
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not thread.is_alive():
                self._server = self._thread = None
                message = f"the sandbox server on port {self.port} failed to start"
                raise RuntimeError(message) from (errors[0] if errors else None)
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the sandbox server did not start in {self.startup_timeout}s")
            time.sleep(0.005)

    @staticmethod
    def _serve(server: uvicorn.Server, sock: socket.socket, errors: list[BaseException]) -> None:
        # Whatever ends the thread early goes to start(), not to threading.excepthook;
        # uvicorn raises SystemExit when the app's lifespan startup fails.
        try:
            server.run(sockets=[sock])
        except BaseException as error:
            errors.append(error)
        finally:
            sock.close()

    def stop(self) -> None:
        """Stop the server and wait for its thread; calling it twice is harmless."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=_GRACEFUL_SHUTDOWN_SECONDS + 5)
        if thread.is_alive():  # pragma: no cover - only when shutdown itself hangs
            server.force_exit = True
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SandboxServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def run_sandbox(
    port: int,
    records: int = 1000,
    seed: int = 42,
    *,
    host: str = "127.0.0.1",
    **options: Unpack[ShopOptions],
) -> None:
    """Serve the shop sandbox in the foreground until interrupted (for `interlink sandbox`).

    `options` are those of `create_shop_app`: products, token, api_key, rate_limit,
    rate_limit_headers, faults, cache_pages and webhooks.
    """
    app = create_shop_app(records=records, seed=seed, **options)
    uvicorn.Server(_config(app, host, port, own_logging=True)).run()


def run_sandbox_suite(
    port: int,
    records: int = 1000,
    seed: int = 42,
    *,
    host: str = "127.0.0.1",
    token: str | None = "sandbox-token",
    rate_limit: tuple[float, float, int] | None = None,
    faults: FaultConfig | None = None,
    cache_pages: bool = False,
    webhooks: WebhookTarget | WebhookSender | None = None,
) -> None:
    """Serve the whole suite (`create_sandbox_app`) in the foreground until interrupted."""
    app = create_sandbox_app(
        records=records,
        seed=seed,
        token=token,
        rate_limit=rate_limit,
        faults=faults,
        cache_pages=cache_pages,
        webhooks=webhooks,
    )
    uvicorn.Server(_config(app, host, port, own_logging=True)).run()
