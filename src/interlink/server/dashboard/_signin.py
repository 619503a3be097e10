"""Signing in with an API key, and out.

```
GET  /login     the form (a fresh form token in a cookie and a hidden field)
POST /login     key -> store.verify_api_key -> a session cookie; 303 to where you were going
POST /logout    the session is deleted; 303 to /login
```

A key that is not accepted (unknown, revoked, malformed) gets one message, whatever the
reason, and counts against the same per-address limit as the API's failed keys
(`server.rate_limits.default`, bucket `addr:ADDRESS auth-failures`, shared with the API):
past it, 429 with Retry-After. A valid key is always let in, as the API does. The form
carries its own token, matched against a cookie, so no other site can sign a browser in
with the attacker's key.
"""

from __future__ import annotations

import hmac
import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from interlink.server._auth import address_bucket
from interlink.server._context import Context
from interlink.store import (
    end_session,
    find_session,
    prune_sessions,
    start_session,
    take_rate_limit,
    verify_api_key,
)

from ._cookies import (
    LOGIN_COOKIE,
    TOKEN_SHAPE,
    forget_session_cookie,
    set_login_cookie,
    set_session_cookie,
)
from ._forms import PostedForm, read_form, same_origin
from ._render import page
from ._session import session_token

__all__ = ["router", "safe_next"]

router = APIRouter(include_in_schema=False)

_NOT_ACCEPTED = "That API key was not accepted. Check it and try again."


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this dashboard, never another site's URL."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\", "/login"))
        or any(ord(char) < 0x20 or char in "\\\x7f" for char in target)
    ):
        return "/"
    return target


def _form(
    request: Request, *, status: int = 200, error: str | None = None, target: str = "/"
) -> Response:
    # A form opened in another tab (or restored by the browser) keeps working: the token
    # already in the cookie is reused, a new one made only when there is none.
    held = request.cookies.get(LOGIN_COOKIE, "")
    token = held if TOKEN_SHAPE.fullmatch(held) else secrets.token_urlsafe(32)
    answer = page(
        request,
        "login.html",
        title="Sign in",
        viewer=None,
        status=status,
        form_token=token,
        error=error,
        next=target,
    )
    set_login_cookie(answer, request, token)
    return answer


@router.get("/login")
def login_form(
    request: Request,
    ctx: Context,
    next_: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
) -> Response:
    target = safe_next(next_)
    token = session_token(request)
    if token is not None and find_session(ctx.store.engine, token) is not None:
        return RedirectResponse(target, status_code=303)
    return _form(request, target=target)


@router.post("/login")
async def login(request: Request, ctx: Context) -> Response:
    if not same_origin(request):
        return _form(request, status=403, error="Sign in from this dashboard's own page.")
    fields = await read_form(request)
    target = safe_next(fields.get("next"))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    given = fields.get("csrf", "")
    if not TOKEN_SHAPE.match(cookie) or not hmac.compare_digest(given.encode(), cookie.encode()):
        return _form(
            request,
            status=403,
            error="The sign-in form had expired. Enter the key again.",
            target=target,
        )
    secret = fields.get("key", "").strip()
    engine = ctx.store.engine
    key = await run_in_threadpool(verify_api_key, engine, secret) if secret else None
    if key is None:
        # The bucket and limit the API spends for requests without a valid key.
        client = request.scope.get("client")
        bucket = f"addr:{address_bucket(client[0] if client else None)} auth-failures"
        limits = ctx.config.server.rate_limits
        limit = limits.get("anonymous", limits["default"])
        spent = await run_in_threadpool(take_rate_limit, engine, bucket, limit.limit, limit.period)
        if not spent.allowed:
            wait = max(1, math.ceil(spent.retry_after))
            answer = _form(
                request,
                status=429,
                error=f"Too many failed sign-ins from this address. Try again in {wait} s.",
                target=target,
            )
            answer.headers["Retry-After"] = str(wait)
            return answer
        return _form(request, status=401, error=_NOT_ACCEPTED, target=target)
    earlier = session_token(request)
    if earlier is not None:  # signing in again: the browser's old session ends
        await run_in_threadpool(end_session, engine, earlier)
    await run_in_threadpool(prune_sessions, engine)
    token = await run_in_threadpool(start_session, engine, key.id)
    answer = RedirectResponse(target, status_code=303)
    set_session_cookie(answer, request, token)
    answer.delete_cookie(LOGIN_COOKIE, path="/login")
    return answer


@router.post("/logout")
async def logout(request: Request, ctx: Context, form: PostedForm) -> Response:
    token = session_token(request)
    if token is not None:
        await run_in_threadpool(end_session, ctx.store.engine, token)
    answer = RedirectResponse("/login?notice=signed-out", status_code=303)
    forget_session_cookie(answer, request)
    return answer
