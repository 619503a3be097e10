"""`/connections`: each connection of interlink.yaml and the state of its stored tokens."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from interlink.oauth import describe_connections

from ._context import Context, known_query_only
from ._envelope import success
from ._models import Envelope

__all__ = ["router"]

router = APIRouter(tags=["connections"], dependencies=[Depends(known_query_only)])


class AccountOut(BaseModel):
    account: str = Field(description="'' for the connection's single account.")
    status: str = Field(description="active, or needs_reauth: the provider refused the grant.")
    expires_at: float | None = Field(description="When the access token expires (epoch s).")
    updated_at: float = Field(description="When the token set was last saved (epoch s).")
    last_error: str | None = Field(description="Why the grant was refused, if it was.")


class ConnectionOut(BaseModel):
    name: str
    auth: str = Field(description="The auth type: none, api_key, bearer, basic, oauth2...")
    accounts: list[AccountOut] = Field(description="Stored tokens (oauth2 connections).")


@router.get(
    "/connections",
    response_model=Envelope[list[ConnectionOut]],
    summary="Connections",
    description="Each connection of interlink.yaml, with the state of its stored tokens "
    "(never the tokens).",
)
def list_connections(request: Request, ctx: Context) -> dict[str, object]:
    return success(request.scope, describe_connections(ctx.config, ctx.store.engine))
