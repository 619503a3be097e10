"""What every POST to the dashboard passes before it acts.

1. A live session (`_session.signed_in`): none is a redirect to /login, and nothing done.
2. Same origin: the browser's `Origin` (else `Referer`) names this very host; a form
   posted from another site, or with `Origin: null`, is refused (403).
3. A form body (`application/x-www-form-urlencoded`, each field once) whose `csrf` field
   is the session's token (`_viewer.csrf_token`), compared in constant time (403).
4. For an action, the key's scope: `write` (403 for a `read` key, whatever the page showed).

The session cookie is SameSite=Strict as well: any one of these stops a forged request.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, Request

from ._errors import Refused
from ._session import SignedIn
from ._viewer import Viewer

__all__ = ["ActionForm", "Posted", "PostedForm", "posted", "read_form", "same_origin", "writer"]

_MAX_FIELDS = 20
_FORM_TYPE = "application/x-www-form-urlencoded"


def same_origin(request: Request) -> bool:
    """Whether the request says it comes from a page of this host (`Origin`, else
    `Referer`, against `Host`). The scheme is not compared: behind a proxy that ends TLS
    the browser's is https and ours http."""
    host = request.headers.get("host", "").strip().lower()
    claimed = request.headers.get("origin")
    if claimed is None:
        claimed = request.headers.get("referer")
    if not host or not claimed:
        return False
    parts = urlsplit(claimed.strip())
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host


async def read_form(request: Request, viewer: Viewer | None = None) -> dict[str, str]:
    """The urlencoded body as fields (none for an empty body); `Refused` (400) for any
    other body, a field sent twice, or more fields than a dashboard form has."""
    body = await request.body()
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not body:
        return {}
    if kind != _FORM_TYPE:
        raise Refused(
            400, "Not a form", f"The dashboard takes forms ({_FORM_TYPE}).", viewer=viewer
        )
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "Not a form", "The form could not be read.", viewer=viewer) from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise Refused(400, "Not a form", f"The field {name!r} came twice.", viewer=viewer)
        fields[name] = value
    return fields


@dataclass(frozen=True, slots=True)
class Posted:
    """A form that passed the checks, and who sent it."""

    viewer: Viewer
    fields: dict[str, str]

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


async def posted(request: Request, viewer: SignedIn) -> Posted:
    """Checks 1 to 3 of the module docstring."""
    if not same_origin(request):
        raise Refused(
            403,
            "Refused",
            "This form was not sent from a page of this dashboard (Origin or Referer "
            "missing or another site's).",
            viewer=viewer,
        )
    fields = await read_form(request, viewer)
    if not hmac.compare_digest(fields.get("csrf", "").encode(), viewer.csrf.encode()):
        raise Refused(
            403,
            "Refused",
            "This form's security token is missing or out of date. Reload the page and try again.",
            viewer=viewer,
        )
    return Posted(viewer, fields)


PostedForm = Annotated[Posted, Depends(posted)]


def writer(form: PostedForm) -> Posted:
    """Check 4: the key may act."""
    if not form.viewer.can_write:
        raise Refused(
            403,
            "Not allowed",
            f"The API key you signed in with has scope {form.viewer.key.scope!r}; this "
            "needs 'write'.",
            viewer=form.viewer,
        )
    return form


ActionForm = Annotated[Posted, Depends(writer)]
