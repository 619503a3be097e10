"""The security headers on every answer of the API, as pure ASGI middleware.

```
X-Content-Type-Options: nosniff          no content sniffing: JSON is never run as HTML
Cache-Control: no-store                  answers carry job data; no proxy or browser keeps them
Referrer-Policy: no-referrer
X-Frame-Options: DENY                    no framing (clickjacking), for browsers without CSP 3
Content-Security-Policy: default-src 'none'; frame-ancestors 'none'
```

The CSP above is for everything that is not HTML: a JSON answer opened in a browser can
load, run and frame nothing. The Swagger UI at `/api/v1/docs` gets a policy that allows
exactly what that page loads (its script and styles from the CDN FastAPI points at, the
OpenAPI document from this server) and still no framing.

An answer that sets `Content-Security-Policy`, `Cache-Control` or `Referrer-Policy`
itself keeps it (`OWN_HEADERS`): the dashboard's pages carry their own strict policy and
a `same-origin` referrer policy (its forms' `Origin` is checked), and its static files a
long cache. `nosniff` and `X-Frame-Options: DENY` are on every answer, whatever it says.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DOCS_CSP",
    "OWN_HEADERS",
    "SECURITY_HEADERS",
    "STRICT_CSP",
    "SecurityHeadersMiddleware",
]

STRICT_CSP = "default-src 'none'; frame-ancestors 'none'"
"""The Content-Security-Policy of every answer that is not an HTML page."""

DOCS_CSP = (
    "default-src 'none'; "
    "script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The policy of the Swagger UI page: its CDN assets and this server's OpenAPI document."""

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
"""Set on every answer (the CSP comes on top, by content type)."""

OWN_HEADERS = frozenset({"cache-control", "content-security-policy", "referrer-policy"})
"""Headers an answer may set itself; the middleware adds them only where they are missing."""


def content_security_policy(content_type: str | None) -> str:
    html = content_type is not None and content_type.lower().startswith("text/html")
    return DOCS_CSP if html else STRICT_CSP


class SecurityHeadersMiddleware:
    """Add `SECURITY_HEADERS` and the CSP to every answer, errors included (keeping any of
    `OWN_HEADERS` the answer set itself)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name.lower() not in OWN_HEADERS or name not in headers:
                        headers[name] = value
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = content_security_policy(
                        headers.get("content-type")
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)
