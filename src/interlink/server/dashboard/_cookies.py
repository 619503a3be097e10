"""The dashboard's two cookies: the signed-in session, and the sign-in form's token.

Both are HttpOnly (no script reads them) and Secure when the dashboard is reached over
https. The session is SameSite=Lax: a link from another site (chat, e-mail, a wiki) opens
the page signed in, while no other site's form or script sends it along; every POST also
needs a same-host Origin and the session's CSRF token. The sign-in form's is Strict.
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
        samesite="lax",
    )


def forget_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="lax"
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
