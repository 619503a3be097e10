"""Where a connection's credentials may go, and the URLs that are shown instead of sent.

A credential belongs to the origin of the connection's `base_url` (RFC 6454: scheme, host
and port) and to the origins listed in its `allowed_origins`; `OriginPolicy` answers
whether a URL is one of them. Auth may change a request's URL on the way out (an API key
in the query); `url_before_auth` gives the URL as it was before, which is the one errors,
logs, pages and checkpoints show.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import unquote, unquote_plus

import httpx

__all__ = [
    "URL_BEFORE_AUTH",
    "OriginPolicy",
    "origin_of",
    "strip_query_params",
    "url_before_auth",
]

URL_BEFORE_AUTH = "interlink.url_before_auth"
"""Request extension: the request's URL before the auth flow changed it."""

Origin = tuple[str, str, int | None]

# `scheme://userinfo@`: credentials written into a URL.
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")


def _origin(url: httpx.URL) -> Origin:
    # httpx lower-cases the scheme and host and drops a port that is the scheme's default.
    return (url.scheme, url.host, url.port)


def origin_of(url: str | httpx.URL) -> str:
    """`scheme://host[:port]` of a URL, without its path, query or userinfo.

    This is how an error names a URL that came from elsewhere: a link's query may carry
    someone's signature or token.

    ```python
    origin_of("https://api.example.com:8443/v1/items?sig=abc")  # 'https://api.example.com:8443'
    ```
    """
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{host}{port}"


def url_before_auth(request: httpx.Request) -> httpx.URL:
    """The URL of `request` as it was before auth was applied (an API key in the query).

    `ApiClient` records it when it sends a request; any other request is returned as is.
    """
    url = request.extensions.get(URL_BEFORE_AUTH)
    return url if isinstance(url, httpx.URL) else request.url


class OriginPolicy:
    """The origins a connection's credentials may go to: its base URL's and the allowed ones."""

    def __init__(self, base_url: str, allowed_origins: Iterable[str] = ()) -> None:
        base = httpx.URL(base_url)
        self.origin = origin_of(base)
        self._allowed = frozenset(
            {_origin(base), *(_origin(httpx.URL(o)) for o in allowed_origins)}
        )

    def allows(self, url: httpx.URL) -> bool:
        return _origin(url) in self._allowed


def strip_query_params(url: str, drop: Callable[[str, str], bool]) -> str:
    """`url` without userinfo and without the query parameters `drop(name, value)` picks.

    `drop` sees the decoded name and the value in three forms (raw, percent-decoded and
    form-decoded) so a secret is found however the server chose to encode it. The rest of
    the URL stays exactly as written, in order.
    """
    if "?" not in url and "@" not in url:
        return url
    head, hash_mark, fragment = url.partition("#")
    base, _, query = head.partition("?")
    stripped = _USERINFO.sub(r"\g<scheme>", base, count=1)
    changed = stripped != base
    if query:
        kept = []
        for pair in query.split("&"):
            raw_name, _, raw = pair.partition("=")
            name = unquote_plus(raw_name)
            if drop(name, raw) or drop(name, unquote(raw)) or drop(name, unquote_plus(raw)):
                changed = True
            else:
                kept.append(pair)
        query = "&".join(kept)
    if not changed:
        return url
    return stripped + ("?" + query if query else "") + hash_mark + fragment
