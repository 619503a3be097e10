"""Connecting an account in a browser: the API that makes a connect link, and the two
pages a browser goes through.

- `POST /api/v1/connections/{connection}/authorize` (write scope), optional JSON
  `{"account": NAME}`: 201 with the flow's id and `url`, a single-use link for a browser
  (valid 10 minutes); `GET /api/v1/connections/{connection}/flows/{id}`: where it stands.
- `GET /connect/{connection}/authorize?ticket=...`: binds the flow to this browser (an
  HttpOnly, SameSite=Lax cookie) and redirects to the provider with state and PKCE.
- `GET /connect/{connection}/callback`: the provider's redirect back; a page that says
  the account is connected, or what went wrong.

The pages are outside /api/v1: no API key (the ticket and the browser's cookie are the
proof), no JSON envelope, no script.
"""

from __future__ import annotations

import asyncio
import html
import re
import secrets
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from interlink.config import ACCOUNT_NAME
from interlink.errors import ConfigError
from interlink.oauth import ConnectError, ConnectFlows

from ._context import Context, api_key_of, known_query_only
from ._envelope import success
from ._errors import ApiProblem, invalid_field, not_found
from ._models import NAME_PATTERN, Envelope

__all__ = ["SESSION_COOKIE", "api_router", "pages_router"]

SESSION_COOKIE = "interlink_connect"
"""The browser session a flow is bound to (RFC 9700 section 4.7.1)."""
_SESSION = re.compile(r"^[A-Za-z0-9_-]{43}$")
_CALLBACK_PARAMS = ("state", "code", "error", "error_description", "iss")

api_router = APIRouter(tags=["connections"], dependencies=[Depends(known_query_only)])
pages_router = APIRouter(include_in_schema=False)

Connection = Annotated[
    str, Path(max_length=200, pattern=NAME_PATTERN, description="A connection's name.")
]


def _flows(request: Request) -> ConnectFlows:
    found = request.app.state.connect_flows
    assert isinstance(found, ConnectFlows)
    return found


# -- the API ----------------------------------------------------------------------------------


class AuthorizeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str | None = Field(
        default=None,
        max_length=200,
        description="The account to store the token under; default: the one the "
        "provider's answer names (auth.account_key), else the connection's single account.",
    )


class FlowOut(BaseModel):
    id: str
    connection: str
    account: str = Field(description="The account asked for ('' when the provider names it).")
    status: Literal["ticket", "started", "exchanging", "connected", "failed"]
    connected_account: str | None = Field(description="The account the token was stored under.")
    error: str | None
    created_at: float
    expires_at: float
    finished_at: float | None
    url: str | None = Field(
        default=None,
        description="Only when the flow is made: the single-use link to open in a browser.",
    )


def _flow_out(row: Any, url: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "connection": row.connection,
        "account": row.account,
        "status": row.status,
        "connected_account": row.connected_account,
        "error": row.error,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "finished_at": row.finished_at,
        "url": url,
    }


def _connectable(ctx: Context, connection: str) -> None:
    if connection not in ctx.config.connections:
        raise not_found(f"connection {connection!r}")


@api_router.post(
    "/connections/{connection}/authorize",
    status_code=201,
    response_model=Envelope[FlowOut],
    summary="Make a connect link",
    description="A single-use link (10 minutes) that sends a browser to the provider to "
    "connect an account of an oauth2 connection; follow the flow at "
    "/connections/{connection}/flows/{id}.",
)
def make_link(
    request: Request,
    ctx: Context,
    connection: Connection,
    body: Annotated[AuthorizeIn | None, Body()] = None,
) -> dict[str, Any]:
    _connectable(ctx, connection)
    account = body.account if body is not None and body.account else ""
    if account and not ACCOUNT_NAME.fullmatch(account):
        raise invalid_field("account", "letters, digits and _ . @ + -, starting with one")
    key = api_key_of(request)
    flows = _flows(request)
    try:
        ticket = flows.issue(
            connection, account=account, created_by=None if key is None else f"apikey:{key.id}"
        )
    except ConfigError as exc:
        raise ApiProblem(409, str(exc), code="NOT_CONNECTABLE") from None
    if ticket.url is None:
        raise ApiProblem(
            409,
            f"connections.{connection}.auth.redirect_uri is not this server's "
            f"/connect/{connection}/callback; use `interlink connect {connection}` instead",
            code="NOT_CONNECTABLE",
        )
    row = flows.get(ticket.flow_id)
    assert row is not None
    return success(request.scope, _flow_out(row, ticket.url))


@api_router.get(
    "/connections/{connection}/flows/{flow_id}",
    response_model=Envelope[FlowOut],
    summary="A connect flow",
    description="Where a connect link stands: made, started, connected or failed (and why).",
)
def get_flow(
    request: Request,
    ctx: Context,
    connection: Connection,
    flow_id: Annotated[str, Path(max_length=40, pattern=r"^flow_[0-9a-f]{24}$")],
) -> dict[str, Any]:
    _connectable(ctx, connection)
    row = _flows(request).get(flow_id)
    if row is None or row.connection != connection:
        raise not_found(f"flow {flow_id!r} of connection {connection!r}")
    return success(request.scope, _flow_out(row))


# -- the pages ----------------------------------------------------------------------------


@pages_router.get("/connect/{connection}/authorize")
async def authorize(request: Request, connection: str) -> Response:
    flows = _flows(request)
    ticket = _single(request, "ticket")
    if isinstance(ticket, Response):
        return ticket
    cookie = request.cookies.get(SESSION_COOKIE, "")
    session = cookie if _SESSION.match(cookie) else secrets.token_urlsafe(32)
    try:
        location = await asyncio.to_thread(flows.start, connection, ticket or "", session)
    except ConfigError:
        return _page(404, "Unknown connection", f"There is no connection {connection!r} here.")
    except ConnectError as exc:
        return _page(exc.status, "Cannot connect", str(exc))
    answer = RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})
    if session != cookie:
        answer.set_cookie(
            SESSION_COOKIE,
            session,
            path=_cookie_path(flows, connection, request),
            secure=_secure(flows, connection, request),
            httponly=True,
            # Lax: the provider's redirect back is a top-level GET from another site.
            samesite="lax",
        )
    return answer


@pages_router.get("/connect/{connection}/callback")
async def callback(request: Request, connection: str) -> Response:
    params: dict[str, str] = {}
    for name in _CALLBACK_PARAMS:
        value = _single(request, name)
        if isinstance(value, Response):
            return value
        if value is not None:
            params[name] = value
    try:
        connected = await _flows(request).finish(
            connection, params, request.cookies.get(SESSION_COOKIE)
        )
    except ConfigError:
        return _page(404, "Unknown connection", f"There is no connection {connection!r} here.")
    except ConnectError as exc:
        title = "Access was not granted" if exc.error == "access_denied" else "Not connected"
        return _page(exc.status, title, str(exc))
    account = f" as account {connected.account!r}" if connected.account else ""
    return _page(
        200,
        "Connected",
        f"Connection {connected.connection!r} is connected{account}. You can close this "
        "tab; interlink uses the new tokens from its next request.",
    )


def _single(request: Request, name: str) -> str | None | Response:
    """A query parameter given at most once (RFC 6749 section 3.1), or a 400 page."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        return _page(400, "Cannot connect", f"The request names {name!r} more than once.")
    return values[0] if values else None


def _cookie_path(flows: ConnectFlows, connection: str, request: Request) -> str:
    """Where the browser sends the cookie back: the callback's `/connect/` (behind a
    proxy that adds a path prefix, the prefix too: the redirect URI says it)."""
    settings = flows.config.connections.get(connection)
    redirect = getattr(getattr(settings, "auth", None), "redirect_uri", None) or ""
    path = urlsplit(redirect).path
    if f"/connect/{connection}/" in path:
        return path[: path.index(f"/connect/{connection}/")] + "/connect/"
    return f"{request.scope.get('root_path', '')}/connect/"


def _secure(flows: ConnectFlows, connection: str, request: Request) -> bool:
    settings = flows.config.connections.get(connection)
    redirect = getattr(getattr(settings, "auth", None), "redirect_uri", None) or ""
    return redirect.startswith("https://") or request.url.scheme == "https"


def _page(status: int, title: str, message: str) -> HTMLResponse:
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width">'
        f"<title>{html.escape(title)} - interlink</title></head>"
        '<body style="font-family:sans-serif;max-width:36em;margin:4em auto">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
