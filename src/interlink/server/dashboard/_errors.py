"""What a dashboard request that cannot go on gets: the sign-in page, or a page that says
why (`Refused`). Both are exceptions that routes and their dependencies raise; the
handlers here answer them."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ._cookies import SESSION_COOKIE, forget_session_cookie
from ._render import page
from ._viewer import Viewer

__all__ = ["Refused", "SignInRequired", "install_handlers", "sign_in_url"]


class SignInRequired(Exception):
    """No live session (none yet, expired, signed out, or its API key revoked)."""


class Refused(Exception):
    """A request the dashboard does not carry out: `status`, a title and one sentence."""

    def __init__(
        self, status: int, title: str, message: str, *, viewer: Viewer | None = None
    ) -> None:
        self.status = status
        self.title = title
        self.message = message
        self.viewer = viewer
        """Who is signed in, when known: the page then has the usual header."""
        super().__init__(message)


def sign_in_url(request: Request) -> str:
    """/login, coming back to this page afterwards (pages reached by GET only)."""
    if request.method not in ("GET", "HEAD") or request.url.path in ("/", "/login"):
        return "/login"
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target, safe='')}"


async def _sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    if "application/json" in request.headers.get("accept", ""):
        answer: Response = JSONResponse(
            {"status": "error", "error": "signed out: sign in again"}, status_code=401
        )
    else:
        answer = RedirectResponse(sign_in_url(request), status_code=303)
    if SESSION_COOKIE in request.cookies:
        forget_session_cookie(answer, request)
    return answer


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return page(
        request,
        "message.html",
        title=exc.title,
        status=exc.status,
        viewer=exc.viewer,
        message=exc.message,
    )


def install_handlers(app: FastAPI) -> None:
    """Answer `SignInRequired` with a redirect to /login (401 for the page's script) and
    `Refused` with a page."""
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(Refused, _refused)
