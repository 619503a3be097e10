"""`interlink serve`: the HTTP API, and by default a job worker in the same process.

One command runs everything on a laptop: uvicorn serves `interlink.server.create_app`,
whose lifespan starts the worker and the scheduler and stops them on Ctrl-C (running
pipelines stop at their next batch and resume from their checkpoint later). With
`--no-worker` the process only serves; `interlink worker` processes run the jobs.
`--http` picks the HTTP/1.1 parser: httptools (in C, the default when it is installed) or
h11 (pure Python); both answer what they refuse in the API's error envelope, alike.
"""

from __future__ import annotations

import importlib.util
import socket
from enum import StrEnum
from typing import Annotated, Any

import typer

from interlink.cli._options import ConfigOption, load_settings, log_level

__all__ = ["register"]

_GRACEFUL_SHUTDOWN = 10
"""Seconds uvicorn gives open connections once told to stop."""
_STOP_GRACE = _GRACEFUL_SHUTDOWN + 30.0 + 5.0
"""Seconds `--processes` gives a stopping server process before SIGKILL: uvicorn's time
for connections, then the lifespan's for the worker's runs to reach a batch boundary
(`_WORKER_STOP_TIMEOUT` in server/app.py, 30 s), and a margin. Less, and the first
process was killed while its runs were still stopping, where one process is not."""


def _listen(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts, so the real port (for --port 0) can be printed."""
    from interlink.errors import ConfigError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns on TCP_NODELAY only for sockets that say TCP, and
    # without it each answer's body waited for the client's delayed ACK of its headers
    # (40 ms a request on Linux).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", key="--port"
        ) from None
    sock.set_inheritable(True)
    return sock


class Http(StrEnum):
    """The HTTP/1.1 parser `interlink serve` runs on."""

    auto = "auto"
    httptools = "httptools"
    h11 = "h11"


def _parser(http: Http) -> str:
    """`httptools` or `h11`: `auto` is httptools when the package is importable."""
    from interlink.errors import ConfigError

    installed = importlib.util.find_spec("httptools") is not None
    if http is Http.auto:
        return "httptools" if installed else "h11"
    if http is Http.httptools and not installed:
        raise ConfigError(
            "--http httptools: the httptools package is not installed "
            "(pip install httptools, or --http h11)",
            key="--http",
        )
    return str(http)


def _protocol(parser: str) -> type[Any]:
    """The protocol class that answers `parser`'s refusals in the envelope."""
    if parser == "httptools":
        from interlink.server import EnvelopeHttpToolsProtocol

        return EnvelopeHttpToolsProtocol
    from interlink.server import EnvelopeH11Protocol

    return EnvelopeH11Protocol


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/api/v1"


def _run_server(app: Any, sock: socket.socket, log_level: str, protocol: type[Any]) -> None:
    """Serve `app` on the bound socket until SIGINT/SIGTERM (tests replace this).

    HTTP/1.1 through the API's own `protocol` class (httptools or h11), so that requests
    the parser refuses are answered in the error envelope too; no WebSocket upgrades (the
    API has none); `X-Forwarded-*` left to the app, which honours them from
    `server.trusted_proxies` only; secret query values masked in the access log.
    """
    import uvicorn

    from interlink.server import install_access_log_filter

    config = uvicorn.Config(
        app,
        http=protocol,
        ws="none",
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN,
        proxy_headers=False,
    )
    install_access_log_filter()  # after Config, which (re)configures uvicorn's loggers
    uvicorn.Server(config).run(sockets=[sock])


def serve(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port.")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve only; run jobs with `interlink worker`.")
    ] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="Jobs the embedded worker runs at once."),
    ] = None,
    http: Annotated[
        Http,
        typer.Option(
            help="The HTTP/1.1 parser: httptools (C), h11 (pure Python), or auto: httptools "
            "when installed."
        ),
    ] = Http.auto,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes sharing the port (one core each); the job worker runs "
            "in the first.",
        ),
    ] = 1,
) -> None:
    """Serve the jobs API under /api/v1 (and run jobs, unless --no-worker).

    The global `--log-level` (default info) is uvicorn's level too: at info, the access
    log and one line per job started and finished. `--processes N` serves from N
    processes on one port, supervised: one that dies is started again, Ctrl-C stops all.
    """
    from interlink.cli._validate import check_buildable
    from interlink.server import create_app
    from interlink.store import Store

    settings = load_settings(ctx, config)
    check_buildable(settings)
    parser = _parser(http)
    workers = concurrency or settings.jobs.concurrency
    # The database first: a bad `database:` is refused before the port is taken.
    store = Store.open(settings.database)
    try:
        sock = _listen(host, port)
    except BaseException:
        store.close()
        raise
    level = log_level(ctx, "info")
    if processes > 1:
        store.close()  # nothing with a connection or a thread crosses the fork
        try:
            _serve_processes(
                settings, sock, host, processes, level, parser, http, no_worker, workers
            )
        finally:
            sock.close()
        return
    try:
        app = create_app(
            settings,
            store=store,
            worker=not no_worker,
            concurrency=workers,
            inbox_process=_inbox_process(store),
        )
    except BaseException:
        store.close()
        sock.close()
        raise
    _banner(sock, host, parser, http, no_worker, workers)
    from interlink.cli._runtime import tune_collector

    tune_collector()
    try:
        _run_server(app, sock, level, _protocol(parser))
    finally:
        sock.close()
        store.close()


def _inbox_process(store: Any) -> bool:
    """Whether webhook deliveries are stored through a writer process: on a SQLite file,
    where a writer thread would share the GIL with the event loop (webhooks/_inbox_process.py)."""
    url = store.engine.url
    return bool(url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"))


def _banner(
    sock: socket.socket,
    host: str,
    parser: str,
    http: Http,
    no_worker: bool,
    workers: int,
    processes: int = 1,
) -> None:
    url = _url(host, sock.getsockname()[1])
    typer.echo(f"interlink API on {url}  (docs: {url}/docs, health: {url}/health)")
    typer.echo(f"dashboard on {url.removesuffix('/api/v1')}/  (sign in with an API key)")
    fallback = http is Http.auto and parser == "h11"
    typer.echo(f"http: {parser}" + (" (httptools is not installed)" if fallback else ""))
    if processes > 1:
        typer.echo(f"processes: {processes}, sharing the port")
    if no_worker:
        typer.echo("worker: off (--no-worker); run jobs with `interlink worker`")
    else:
        where = " (in the first process)" if processes > 1 else ""
        typer.echo(f"worker: on, {workers} jobs at once, with schedules{where}")
    typer.echo("Ctrl-C stops.", err=True)


def _serve_processes(
    settings: Any,
    sock: socket.socket,
    host: str,
    count: int,
    level: str,
    parser: str,
    http: Http,
    no_worker: bool,
    workers: int,
) -> None:
    """Serve from `count` supervised processes on `sock` (see cli/_processes.py)."""
    from interlink.cli._processes import Supervisor
    from interlink.cli._runtime import tune_collector

    protocol = _protocol(parser)

    def serve_one(index: int) -> None:
        from interlink.server import create_app
        from interlink.store import Store

        store = Store.open(settings.database)
        try:
            worker = not no_worker and index == 0
            app = create_app(
                settings,
                store=store,
                worker=worker,
                concurrency=workers,
                inbox_process=_inbox_process(store),
            )
            tune_collector()
            _run_server(app, sock, level, protocol)
        finally:
            store.close()

    _banner(sock, host, parser, http, no_worker, workers, count)
    code = Supervisor(
        count, serve_one, report=lambda line: typer.echo(line, err=True), grace=_STOP_GRACE
    ).run()
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `serve` to `app`."""
    app.command("serve")(serve)
