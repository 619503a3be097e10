"""The answer to a request the HTTP parser refuses, shared by the h11 and httptools protocols.

A refused request never reaches the app, so its answer is built here: the API's error
envelope with the status's stable code, a fresh request id, the security headers and the
strict CSP, and `Connection: close` (the connection is closed after it). The detail names
the part of the request at fault and says the parser refused it; what the parser itself
said is never passed on, as it may quote the offending bytes (a credential, say).

```
{"status": "error", "error": {"code": "HEADERS_TOO_LARGE", "message": "...",
 "details": [{"field": "headers", "issue": "refused by the HTTP parser"}]}, "meta": {...}}
```
"""

from __future__ import annotations

from dataclasses import dataclass

from ._envelope import error_response
from ._security import SECURITY_HEADERS, STRICT_CSP

__all__ = ["REFUSED", "Refusal", "refusal_answer"]

REFUSED = "refused by the HTTP parser"
"""The `issue` of a refusal's detail: the app never saw the request."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a refused request is told: its status, the part at fault, and why."""

    status: int
    field: str
    message: str


def refusal_answer(refusal: Refusal) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers (lower-case names) and the body of the answer to `refusal`."""
    response = error_response(
        {"type": "http", "state": {}},
        refusal.status,
        refusal.message,
        details=[{"field": refusal.field, "issue": REFUSED}],
        headers={"Connection": "close"},
    )
    headers = [
        *response.raw_headers,
        *((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS),
        (b"content-security-policy", STRICT_CSP.encode()),
    ]
    return headers, bytes(response.body)
