"""Keep credentials a client put in a URL out of uvicorn's access log.

The API takes keys only in the `Authorization` header, but a client may still send one as
`?api_key=...` (or a token as `?access_token=...`), and uvicorn's access log writes every
request's path and query as they came. `SecretQueryFilter` masks, in every access line,
the values of query parameters whose names look secret (`api_key`, `key`, `token`,
`access_token`, `secret`, `password`, `client_secret`, `signature`, `sig`, `code`,
`auth`, `session`, `credential`, ...; case and percent-encoding do not matter) and anything
shaped like an interlink API key, wherever it is in the line:

```
127.0.0.1:51234 - "GET /api/v1/jobs?api_key=***&limit=5 HTTP/1.1" 401
```
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

from interlink.http import MASK, SECRET_PARAM

__all__ = [
    "ACCESS_LOGGER",
    "SECRET_NAME",
    "SecretQueryFilter",
    "install_access_log_filter",
    "mask_target",
]

ACCESS_LOGGER = "uvicorn.access"

SECRET_NAME = SECRET_PARAM
"""Query parameter names (lower-cased) whose values the access log never shows: the same
list `interlink.http` masks in its own logs."""

# A value runs to the next `&`, `;` or space: a `#` in a request target is part of it.
_PARAM = re.compile(r"(?P<head>[?&;](?P<name>[^=&;#\s]+)=)(?P<value>[^&;\s]*)")
_API_KEY = re.compile(r"il_[a-z0-9]{8}_[A-Za-z0-9]+")
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")


def _mask_param(match: re.Match[str]) -> str:
    name = unquote_plus(match["name"]).lower()
    if match["value"] and SECRET_NAME.search(name):
        return match["head"] + MASK
    return match[0]


def mask_target(text: str) -> str:
    """`text` (a request target, or a whole log line) with secret query values and
    API-key-shaped strings masked; everything else as it was."""
    if "=" in text:
        text = _PARAM.sub(_mask_param, text)
    if "%" in text and _ENCODED.search(text):
        # A key percent-encoded (`il%5F...`) is still a key: decoded, it is masked above.
        decoded = unquote_plus(text)
        if decoded != text and ("il_" in decoded or _PARAM.search(decoded)):
            masked = mask_target(decoded)
            if masked != decoded:
                return masked
    if "il_" in text:
        text = _API_KEY.sub(MASK, text)
    return text


class SecretQueryFilter(logging.Filter):
    """A logging filter for uvicorn's access logger: masks what `mask_target` masks in
    the record's arguments (client, method, path and query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                mask_target(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = mask_target(record.msg)
        return True


def install_access_log_filter(logger: logging.Logger | None = None) -> None:
    """Put a `SecretQueryFilter` on uvicorn's access logger (once)."""
    logger = logger or logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, SecretQueryFilter) for f in logger.filters):
        logger.addFilter(SecretQueryFilter())
