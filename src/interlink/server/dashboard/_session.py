"""The signed-in session behind a request, as a route dependency.

```python
@router.get("/runs/{run_id:int}")
def run_page(request: Request, ctx: Context, viewer: SignedIn) -> Response: ...
```

The session cookie is looked up on every request (`store.find_session`: one indexed read
that also reads the API key), so an expired session, a signed-out one, or one whose key
was revoked sends the browser to /login on its very next request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from interlink.server._context import Context
from interlink.store import find_session

from ._cookies import SESSION_COOKIE, TOKEN_SHAPE
from ._errors import SignInRequired
from ._viewer import Viewer, csrf_token

__all__ = ["SignedIn", "session_token", "signed_in"]


def session_token(request: Request) -> str | None:
    """The session cookie's value when it has a token's shape."""
    token = request.cookies.get(SESSION_COOKIE, "")
    return token if TOKEN_SHAPE.match(token) else None


def signed_in(request: Request, ctx: Context) -> Viewer:
    """Who is signed in; `SignInRequired` when nobody is (the handler sends to /login)."""
    token = session_token(request)
    session = find_session(ctx.store.engine, token) if token is not None else None
    if token is None or session is None:
        raise SignInRequired
    return Viewer(session.key, csrf_token(token))


SignedIn = Annotated[Viewer, Depends(signed_in)]
