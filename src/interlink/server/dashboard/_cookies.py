"""The dashboard's two cookies: the signed-in session, and the sign-in form's token.

Both are HttpOnly (no script reads them), SameSite=Strict (no other site's page sends them
along) and Secure when the dashboard is reached over https.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from interlink.store import SESSION_LIFETIME

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "TOKEN_SHAPE",
    "forget_session_cookie",
    "set_login_cookie",
    "set_session_cookie",
]

SESSION_COOKIE = "interlink_session"
LOGIN_COOKIE = "interlink_login"
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")
"""`secrets.token_urlsafe(32)`: what both cookies hold."""
_LOGIN_FORM_LIFETIME = 3600


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME),
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )


def forget_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="strict"
    )


def set_login_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=_LOGIN_FORM_LIFETIME,
        path="/login",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
