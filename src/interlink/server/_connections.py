"""`/connections`: each connection of interlink.yaml, switching it (or one account of it)
off and on, and disconnecting an account.

```
GET  /api/v1/connections                           read: the listing, never a token
POST /api/v1/connections/{connection}/disable      write: {"account"?, "reason"?}
POST /api/v1/connections/{connection}/enable       write: {"account"?}
POST /api/v1/connections/{connection}/disconnect   write: {"account"?, "forget_anyway"?}
```

Who switched a connection off is recorded as the API key's id and name (never the key).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from interlink.config import InterlinkConfig
from interlink.errors import ConfigError
from interlink.oauth import (
    MAX_REASON,
    AccountNotConnectedError,
    RevocationError,
    UnknownConnectionError,
    describe_connections,
    disconnect,
    switch_off,
)
from interlink.webhooks import switch_on_releasing

from ._context import Context, api_key_of, known_query_only
from ._envelope import success
from ._errors import ApiProblem, invalid_field
from ._models import NAME_PATTERN, Envelope, ErrorEnvelope

__all__ = ["router"]

router = APIRouter(tags=["connections"], dependencies=[Depends(known_query_only)])

_ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,199}$"
"""config.ACCOUNT_NAME, as a JSON schema pattern."""

ConnectionName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=NAME_PATTERN,
        description="A connection of this server's interlink.yaml.",
    ),
]
Account = Annotated[
    str | None,
    Field(
        default=None,
        max_length=200,
        pattern=_ACCOUNT_PATTERN,
        description="One connected account; leave it out for the whole connection.",
    ),
]


class SwitchedOff(BaseModel):
    reason: str | None = Field(description="Why it was switched off, as given.")
    since: float = Field(description="When it was switched off (epoch s).")
    by: str | None = Field(description="'cli', or the API key (id and name) that did it.")


class RunRef(BaseModel):
    run_id: int
    pipeline: str
    status: str
    finished_at: float | None = Field(description="When the run ended (epoch s).")


class FailedRunRef(RunRef):
    message: str | None = Field(description="Why it failed.")


class AccountOut(BaseModel):
    account: str = Field(description="'' for the connection's single account.")
    status: str = Field(
        description="active; needs_reauth: the provider refused the grant; no_token: "
        "switched off, with no token stored."
    )
    enabled: bool = Field(description="False while this account (or its connection) is off.")
    disabled: SwitchedOff | None = Field(description="This account's own switch-off.")
    expires_at: float | None = Field(description="When the access token expires (epoch s).")
    updated_at: float | None = Field(description="When the token set was last saved (epoch s).")
    last_error: str | None = Field(description="Why the grant was refused, if it was.")


class ConnectionOut(BaseModel):
    name: str
    auth: str = Field(description="The auth type: none, api_key, bearer, basic, oauth2...")
    enabled: bool = Field(description="False while the connection is switched off.")
    disabled: SwitchedOff | None
    last_success: RunRef | None = Field(
        description="The newest run that got through, of the pipelines reading from or "
        "writing to this connection."
    )
    last_error: FailedRunRef | None = Field(description="The newest failed or crashed run.")
    accounts: list[AccountOut] = Field(description="Stored tokens (oauth2 connections).")


class DisableBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: Account = None
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON)] | None = Field(
        None, description="Why, for whoever looks at it later (shown in listings)."
    )


class EnableBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: Account = None


class DisconnectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: Account = None
    forget_anyway: bool = Field(
        False,
        description="Forget the token even when the provider did not confirm the "
        "revocation (the grant then stays valid there).",
    )


class SwitchOut(BaseModel):
    connection: str
    account: str
    enabled: bool = Field(description="The state now (an account also needs its connection on).")
    changed: bool = Field(description="False when it already was so.")
    disabled: SwitchedOff | None = Field(description="What still holds it off, if anything.")


class EnableOut(SwitchOut):
    released: int = Field(
        description="Webhook deliveries held while it was off (status `held`) that are "
        "queued for processing now."
    )


class DisconnectOut(BaseModel):
    connection: str
    account: str
    revoked: str | None = Field(
        description="refresh_token or access_token: what the provider revoked; null when "
        "it was not revoked (see note)."
    )
    forgotten: bool
    note: str | None = Field(description="What is still left to do by hand, if anything.")


def _who(request: Request) -> str:
    key = api_key_of(request)
    return f"api key {key.id} ({key.name})" if key is not None else "api"


def _problem(exc: ConfigError) -> ApiProblem:
    if isinstance(exc, UnknownConnectionError):
        return ApiProblem(404, f"{exc.message[0].upper()}{exc.message[1:]}.")
    if isinstance(exc, AccountNotConnectedError):
        return invalid_field("account", exc.message)
    return ApiProblem(500, exc.message, code="INVALID_CONFIG")


def _check_name(config: InterlinkConfig, connection: str) -> None:
    if connection not in config.connections:
        raise _problem(UnknownConnectionError(connection, list(config.connections)))


@router.get(
    "/connections",
    response_model=Envelope[list[ConnectionOut]],
    summary="Connections",
    description="Each connection of interlink.yaml: switched on or off, its last successful "
    "and last failed run, and the state of its stored tokens (never the tokens).",
)
def list_connections(request: Request, ctx: Context) -> dict[str, object]:
    return success(request.scope, describe_connections(ctx.config, ctx.store.engine))


_SWITCH_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorEnvelope, "description": "NOT_FOUND: no such connection"},
    422: {"model": ErrorEnvelope, "description": "VALIDATION_ERROR: the account is not connected"},
}


@router.post(
    "/connections/{connection}/disable",
    response_model=Envelope[SwitchOut],
    responses=_SWITCH_ERRORS,
    summary="Switch a connection (or one account) off",
    description="Its runs, jobs, schedules and webhook deliveries are refused until it is "
    "enabled again; nothing is deleted. Switching off what already is off changes nothing "
    "(`changed: false`; the first reason is kept).",
)
def disable_connection(
    request: Request,
    ctx: Context,
    connection: ConnectionName,
    body: Annotated[DisableBody | None, Body()] = None,
) -> dict[str, object]:
    given = body or DisableBody()
    _check_name(ctx.config, connection)
    try:
        done = switch_off(
            ctx.config,
            ctx.store,
            connection,
            given.account or "",
            reason=given.reason,
            by=_who(request),
        )
    except ConfigError as exc:
        raise _problem(exc) from None
    return success(request.scope, done.to_dict())


@router.post(
    "/connections/{connection}/enable",
    response_model=Envelope[EnableOut],
    responses=_SWITCH_ERRORS,
    summary="Switch a connection (or one account) on again",
    description="What was refused while it was off goes on from where it was, and the "
    "webhook deliveries held meanwhile are queued (`released`). An account switched on "
    "stays off while its connection is (`enabled: false`, `disabled` says why).",
)
def enable_connection(
    request: Request,
    ctx: Context,
    connection: ConnectionName,
    body: Annotated[EnableBody | None, Body()] = None,
) -> dict[str, object]:
    given = body or EnableBody()
    _check_name(ctx.config, connection)
    try:
        done, released = switch_on_releasing(
            ctx.config, ctx.store, ctx.queue, connection, given.account or ""
        )
    except ConfigError as exc:
        raise _problem(exc) from None
    return success(request.scope, {**done.to_dict(), "released": len(released)})


@router.post(
    "/connections/{connection}/disconnect",
    response_model=Envelope[DisconnectOut],
    responses={
        **_SWITCH_ERRORS,
        502: {
            "model": ErrorEnvelope,
            "description": "REVOCATION_FAILED: the provider did not confirm; the token is kept",
        },
    },
    summary="Disconnect an account",
    description="Revokes the account's grant at the connection's `revocation_url` (RFC "
    "7009) and forgets its token. Without a revocation endpoint the token is forgotten and "
    "`note` says how to remove the grant at the provider. When the provider does not "
    "confirm, the token is kept (502) unless `forget_anyway`.",
)
async def disconnect_account(
    request: Request,
    ctx: Context,
    connection: ConnectionName,
    body: Annotated[DisconnectBody | None, Body()] = None,
) -> dict[str, object]:
    given = body or DisconnectBody()
    _check_name(ctx.config, connection)
    try:
        done = await disconnect(
            ctx.config,
            ctx.store,
            connection,
            given.account or "",
            forget_anyway=given.forget_anyway,
        )
    except ConfigError as exc:
        raise _problem(exc) from None
    except RevocationError as exc:
        raise ApiProblem(502, str(exc), code=exc.code) from None
    return success(request.scope, done.to_dict())
