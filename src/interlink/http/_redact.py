"""Keep secrets out of log lines and error messages.

URLs lose the values of query parameters whose names look secret and the password of their
userinfo; free text (error bodies, messages) loses every secret value the connection knows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "SECRET_PARAM_NAMES", "Redactor"]

MASK = "***"

SECRET_PARAM_NAMES = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "api-key",
        "auth",
        "client_secret",
        "code",
        "key",
        "password",
        "passwd",
        "refresh_token",
        "secret",
        "sig",
        "signature",
        "token",
        "id_token",
        "code_verifier",
    }
)


class Redactor:
    """Masks secrets in URLs and text for one connection.

    Give it the query parameter names that carry secrets on this connection (an `api_key`
    in the query, say) and register every secret value as it becomes known (static keys at
    start-up, access tokens when they are issued).
    """

    def __init__(self, param_names: Iterable[str] = ()) -> None:
        self._names = SECRET_PARAM_NAMES | {n.lower() for n in param_names}
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add_secret(self, value: str | None) -> None:
        """Mask `value` from now on, as written and as it looks percent-encoded in a URL."""
        # Very short values would mask innocent text; real secrets are longer than this.
        if not value or len(value) < 4 or value in self._values:
            return
        self._values.update({value, quote(value, safe=""), quote_plus(value)})
        ordered = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def url(self, url: str) -> str:
        """The URL with secret query values and any userinfo password masked."""
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(name.lower() in self._names for name, _ in pairs):
                query = urlencode(
                    [(n, MASK if n.lower() in self._names else v) for n, v in pairs], safe="*"
                )
        return self.text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))

    def text(self, text: str) -> str:
        """The text with every registered secret value masked."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)
