"""`interlink connect CONNECTION [--account NAME]`: connect an account from a terminal.

When the connection's `redirect_uri` is on this machine (127.0.0.1, localhost, [::1]) and
its port is free, the command catches the provider's redirect itself on that port: it
prints the authorize URL (and opens it with `--open`), waits for the browser to come back,
redeems the code and stores the tokens. Otherwise (the redirect URI is `interlink serve`'s
callback, here or elsewhere) it prints a connect link for that server and waits until the
flow ends there: both processes share the database.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from interlink.cli._options import ConfigOption, load_settings

if TYPE_CHECKING:
    from interlink.config import InterlinkConfig
    from interlink.oauth import ConnectFlows

__all__ = ["register"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_POLL = 0.5


def connect(
    ctx: typer.Context,
    connection: Annotated[str, typer.Argument(help="An oauth2 connection of interlink.yaml.")],
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            help="Store the tokens under this account name (default: the one the "
            "provider's answer names, or the connection's single account).",
        ),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the link in a browser.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, help="Seconds to wait for the browser (at most 600)."),
    ] = 300.0,
    config: ConfigOption = None,
) -> None:
    """Connect an account of an oauth2 connection: open the printed link in a browser."""
    from interlink.oauth import ConnectFlows, connect_settings
    from interlink.store import Store

    settings = load_settings(ctx, config)
    auth = connect_settings(settings, connection)
    assert auth.redirect_uri is not None
    store = Store.open(settings.database)
    try:
        flows = ConnectFlows(settings, store, lifetime=min(timeout, 600.0) + 30)
        listener = _listener(auth.redirect_uri)
        if listener is not None:
            ok = asyncio.run(
                _catch(
                    flows,
                    connection,
                    account or "",
                    listener,
                    auth.redirect_uri,
                    open_browser=open_browser,
                    timeout=timeout,
                )
            )
        else:
            ok = _follow(flows, settings, connection, account or "", open_browser, timeout)
    finally:
        store.close()
    if not ok:
        raise typer.Exit(1)


def _listener(redirect_uri: str) -> socket.socket | None:
    """A socket bound to the redirect URI's loopback address, or None when it is not on
    this machine or its port is taken (`interlink serve` there takes the callback)."""
    parts = urlsplit(redirect_uri)
    host = (parts.hostname or "").lower()
    if host not in _LOOPBACK:
        return None
    port = parts.port or 80
    family = socket.AF_INET6 if host == "::1" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1" if host == "localhost" else host, port))
        sock.listen(16)
    except OSError:
        sock.close()
        return None
    return sock


def _show(url: str, open_browser: bool) -> None:
    typer.echo("Open this link in a browser to connect (it works once):")
    typer.echo(f"  {url}")
    if open_browser:
        import webbrowser

        webbrowser.open(url)


async def _catch(
    flows: ConnectFlows,
    connection: str,
    account: str,
    sock: socket.socket,
    redirect_uri: str,
    *,
    open_browser: bool,
    timeout: float,
) -> bool:
    """Serve the redirect URI's path on `sock` until the flow's callback came."""
    import secrets

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    from interlink.oauth import ConnectError

    session = secrets.token_urlsafe(32)
    flow_id, url = await asyncio.to_thread(
        flows.begin, connection, session, account=account, created_by="cli"
    )
    outcome: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    async def callback(request: Request) -> Response:
        params = dict(request.query_params.items())
        if len(params) != len(request.query_params.multi_items()):
            return HTMLResponse(_page("Cannot connect", "A parameter came twice."), 400)
        try:
            connected = await flows.finish(connection, params, session)
        except ConnectError as exc:
            if not outcome.done() and exc.error not in ("invalid_state",):
                outcome.set_result(str(exc))
            return HTMLResponse(_page("Not connected", str(exc)), exc.status)
        except Exception as exc:  # a bug or a broken database: say so, stop waiting
            logging.getLogger("interlink.oauth").exception("the callback failed")
            failure = f"the callback failed ({type(exc).__name__}); see the log"
            if not outcome.done():
                outcome.set_result(failure)
            return HTMLResponse(_page("Not connected", failure), 500)
        named = f" as account {connected.account!r}" if connected.account else ""
        if not outcome.done():
            outcome.set_result(None)
        return HTMLResponse(
            _page("Connected", f"{connection!r} is connected{named}. You can close this tab."),
            200,
            headers={"Cache-Control": "no-store"},
        )

    path = urlsplit(redirect_uri).path or "/"
    app = Starlette(routes=[Route(path, callback, methods=["GET"])])
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    _show(url, open_browser)
    typer.echo(f"Waiting for the browser on {redirect_uri.split('?')[0]} ...")
    try:
        failure = await asyncio.wait_for(outcome, timeout)
    except TimeoutError:
        failure = f"no answer from the browser within {timeout:.0f} s; run the command again"
    finally:
        server.should_exit = True
        await serving
    return _report(flows, flow_id, failure)


def _follow(
    flows: ConnectFlows,
    settings: InterlinkConfig,
    connection: str,
    account: str,
    open_browser: bool,
    timeout: float,
) -> bool:
    """Print a link for the server that takes the callback, and wait for the flow there."""
    from interlink.errors import ConfigError

    ticket = flows.issue(connection, account=account, created_by="cli")
    if ticket.url is None:
        raise ConfigError(
            f"connections.{connection}.auth.redirect_uri: neither on this machine nor "
            f"interlink's /connect/{connection}/callback; point it at `interlink serve` or "
            "at a free port of 127.0.0.1",
            key=f"connections.{connection}.auth.redirect_uri",
        )
    _show(ticket.url, open_browser)
    typer.echo("Waiting for the server to finish connecting ...")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = flows.get(ticket.flow_id)
        if row is not None and row.status in ("connected", "failed"):
            return _report(flows, ticket.flow_id, row.error if row.status == "failed" else None)
        time.sleep(_POLL)
    return _report(
        flows, ticket.flow_id, f"not finished within {timeout:.0f} s; run the command again"
    )


def _report(flows: ConnectFlows, flow_id: str, failure: str | None) -> bool:
    row = flows.get(flow_id)
    if failure is None and row is not None and row.status == "connected":
        named = f", account {row.connected_account!r}" if row.connected_account else ""
        typer.echo(f"Connected {row.connection!r}{named}.")
        return True
    typer.echo(f"Not connected: {failure or (row.error if row else 'unknown flow')}", err=True)
    return False


def _page(title: str, message: str) -> str:
    import html

    return (
        f"<!doctype html><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
    )


def register(app: typer.Typer) -> None:
    """Add the `connect` command to `app`."""
    app.command("connect")(connect)
