"""Keep secrets out of log lines and error messages.

URLs lose the values of query parameters whose names look secret and the password of their
userinfo; free text (error bodies, messages) loses every secret value the connection knows.
The same knowledge tells which parameters of a link the server hands back are the
connection's own credential (`is_credential`), so they can be taken out before the link is
stored or followed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "SECRET_HEADER", "SECRET_PARAM", "Redactor"]

MASK = "***"

SECRET_PARAM = re.compile(
    r"token|secret|pass|api[_-]?key|apikey|access[_-]?key|signature|credential|session|"
    r"private|code_verifier|^key$|^sig$|^code$|^auth$|^authorization$|^jwt$|^x-amz-security|"
    # OAuth's redirect back and interlink's connect links: a state or a ticket in a log
    # would let its reader finish or start someone else's connect flow.
    r"^state$|^ticket$"
)
"""Query parameter names (lower-cased) whose values are credentials."""

SECRET_HEADER = re.compile(
    r"authorization|cookie|api[_-]?key|apikey|access[_-]?key|token|secret|signature|"
    r"session|password|credential|^x-auth|^x-amz-security"
)
"""Header names (lower-cased) whose values are credentials: `Authorization`,
`Proxy-Authorization`, `Cookie`, `Set-Cookie`, `X-API-Key`, `X-Auth-Token`..."""

# `scheme://user:password@`, and `?name=value` / `&name=value` pairs of a query string.
# The password runs to the LAST `@` of the authority, as URL parsers read it: in
# `https://bob:p@ss@host` it is `p@ss`, not `p` followed by a host `ss@host`.
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*):[^/?#]*@")
_PARAM = re.compile(r"(?P<head>[?&](?P<name>[^=&#]+)=)(?P<value>[^&#]*)")
# The same in a header's value, where a URL ends at `>` (`Link: <...>; rel="next"`).
_HEADER_PARAM = re.compile(r"(?P<head>[?&](?P<name>[^=&#<>;,\s\"]+)=)(?P<value>[^&#<>;,\s\"]*)")


class Redactor:
    """Masks secrets in URLs and text for one connection.

    Give it the query parameter names that carry secrets on this connection (an `api_key`
    in the query, say) and register every secret value as it becomes known (static keys at
    start-up, access tokens when they are issued).
    """

    def __init__(self, param_names: Iterable[str] = ()) -> None:
        self._names = {n.lower() for n in param_names}
        self._credential_params: set[str] = set()
        self._values: set[str] = set()
        self._masked: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._shown_pattern: re.Pattern[str] | None = None

    def add_param(self, name: str) -> None:
        """Treat query parameter `name` as the connection's credential from now on (an
        `in: query` API key): masked in URLs, and taken out of the links a server sends."""
        self._names.add(name.lower())
        self._credential_params.add(name.lower())

    def add_own_param(self, name: str) -> None:
        """A query parameter the connection adds to every request itself (`params:`): taken
        out of the links a server hands back, so it is added once at send time. Its value
        is masked only when registered with `add_secret`."""
        self._credential_params.add(name.lower())

    def holds_secret(self, text: str) -> bool:
        """Whether any registered secret appears anywhere in `text` (in any of its forms)."""
        return self._pattern is not None and self._pattern.search(text) is not None

    def is_secret(self, value: object) -> bool:
        """Whether `value` is one of the secrets registered with `add_secret`."""
        return isinstance(value, str) and value in self._values

    def is_credential(self, name: str, value: str) -> bool:
        """Whether a query parameter is the connection's own credential: the parameter
        named with `add_param`, or a value that is a secret this redactor knows.

        Names that merely look secret (`token`, `signature`) are not enough: a next link's
        page token or a signed URL's signature belongs to the link.
        """
        return name.lower() in self._credential_params or (bool(value) and value in self._values)

    def add_secret(self, value: str | None) -> None:
        """Mask `value` from now on, as written and as it looks percent-encoded in a URL."""
        # Very short values would mask innocent text; real secrets are longer than this.
        if not value or len(value) < 4 or value in self._values:
            return
        self._values.update(_forms(value))
        self._pattern = _alternatives(self._values)
        self._shown_pattern = _alternatives(self._values | self._masked)

    def add_masked(self, value: str | None) -> None:
        """Mask `value` in what is shown (URLs, headers, text) from now on, without making
        it the connection's credential: a secret `${VAR}` of interlink.yaml written into a
        resource's path stays in the requests and links that carry it, and out of logs."""
        if not value or len(value) < 4 or value in self._masked:
            return
        self._masked.update(_forms(value))
        self._shown_pattern = _alternatives(self._values | self._masked)

    def url(self, url: str) -> str:
        """The URL with secret query values, the userinfo password and known secrets masked.

        Everything else stays exactly as written.

        ```python
        Redactor().url("postgresql://app:hunter2@db/x?sslmode=require&token=abc")
        # 'postgresql://app:***@db/x?sslmode=require&token=***'
        ```
        """
        url = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", url, count=1)
        url = _PARAM.sub(self._mask_param, url)
        return self.text(url)

    def _mask_param(self, match: re.Match[str]) -> str:
        if match["value"] and self._secret_name(match["name"]):
            return match["head"] + MASK
        return match[0]

    def _secret_name(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in self._names or SECRET_PARAM.search(lowered) is not None

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Headers as they may be shown: credential headers (`SECRET_HEADER`) masked
        whole, every other value with its secret query values and known secrets masked
        (a `Link` header carries URLs)."""
        return [
            (
                name,
                MASK
                if SECRET_HEADER.search(name.lower())
                else self.text(_HEADER_PARAM.sub(self._mask_param, value)),
            )
            for name, value in headers
        ]

    def text(self, text: str) -> str:
        """The text with every registered secret value masked."""
        if self._shown_pattern is None:
            return text
        return self._shown_pattern.sub(MASK, text)


def _forms(value: str) -> set[str]:
    """A secret as written and as it looks percent-encoded in a URL."""
    return {value, quote(value, safe=""), quote_plus(value)}


def _alternatives(values: set[str]) -> re.Pattern[str]:
    ordered = sorted(values, key=len, reverse=True)
    return re.compile("|".join(re.escape(v) for v in ordered))
