"""Cassettes: the HTTP exchanges of a read, kept in one JSON file to be replayed offline.

A cassette holds what a connection sent and what came back, with everything secret taken
out before it is written: the connection's `Redactor` masks every secret it knows (API
keys, tokens, client secrets, in URLs, headers and bodies); `Authorization`,
`Proxy-Authorization`, cookies and any header holding a secret are dropped; credentials in
URLs (userinfo, the connection's own query parameters) are stripped; and JSON fields named
like credentials (`access_token`, `client_secret`, `password`) are masked wherever they
sit in a body.

URLs under the connection's `base_url` are kept relative to it, so a cassette recorded
against one address replays against another. The file is written in a deterministic
order (by connection, method, URL and body; the exchanges of one request keep the order
they happened in), so recording the same read twice gives the same file and a diff shows
what the API changed:

```json
{
  "interlink_cassette": 1,
  "exchanges": [
    {
      "connection": "shop",
      "request": {"method": "GET", "url": "/products/1"},
      "response": {"status": 200, "headers": {"content-type": "application/json"},
                   "json": {"id": 1, "name": "Lamp"}}
    }
  ]
}
```

Replaying matches a request by method, URL and body, with each masked part (`***`)
matching any value, so a replay needs no real secret. Each recorded answer is given once,
in order; when they are used up the last one repeats (a poll, a second read).
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson

from interlink.errors import ApiError, ConfigError

from ._redact import MASK, SECRET_PARAM, Redactor
from ._urls import strip_query_params, url_before_auth

__all__ = [
    "CASSETTE_VERSION",
    "Cassette",
    "CassetteMissError",
    "Exchange",
    "cassette_path",
    "record_exchange",
]

CASSETTE_VERSION = 1

Exchange = dict[str, Any]
"""One request and its response as stored: `{"connection", "request", "response"}`."""

# Never stored: credentials and session state, and what differs on every run of the same
# read (an idempotency key, a request id) or says nothing about it (the client's name).
_DROPPED_REQUEST_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "content-length",
        "host",
        "user-agent",
        "accept-encoding",
        "idempotency-key",
        "x-idempotency-key",
        "x-request-id",
        "traceparent",
    }
)
# The body is stored decoded, so its encoding and length headers no longer describe it.
_DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "set-cookie",
        "set-cookie2",
        "content-encoding",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "date",
    }
)
# JSON fields whose string values are credentials wherever they appear in a body.
_SECRET_FIELD = re.compile(
    r"^(access_token|refresh_token|id_token|client_secret|password|passwd|api_?key|"
    r"secret|authorization|x-api-key|private_key)$",
    re.IGNORECASE,
)


def cassette_path(name: str | os.PathLike[str]) -> Path:
    """The file of cassette `name`: `cassettes/shop` is `cassettes/shop.json`."""
    path = Path(name)
    return path if path.suffix == ".json" else path.with_name(path.name + ".json")


class CassetteMissError(ApiError):
    """A replayed request was never recorded: record the cassette again (or fix the test).

    `str()` names the request (method and masked URL) and the cassette file.
    """

    code = "REPLAY_MISS"

    def __init__(self, message: str, *, method: str, url: str, cassette: Path) -> None:
        self.cassette = cassette
        super().__init__(message, method=method, url=url)


# -- masking ------------------------------------------------------------------------------


def _mask_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: MASK
            if isinstance(key, str) and _SECRET_FIELD.match(key) and isinstance(item, str) and item
            else _mask_fields(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_fields(item) for item in value]
    return value


def _masked_url(request: httpx.Request, redactor: Redactor, base_url: str = "") -> str:
    """The URL as stored: masked, and relative to the connection's base URL when under it
    (so a cassette replays against the same API at another address)."""
    url = redactor.url(strip_query_params(str(url_before_auth(request)), redactor.is_credential))
    base = redactor.url(strip_query_params(base_url, redactor.is_credential)).rstrip("/")
    if base and url.startswith(base) and url[len(base) : len(base) + 1] in ("", "/", "?"):
        rest = url[len(base) :]
        return rest if rest.startswith("/") else "/" + rest
    return url


def _masked_headers(
    headers: httpx.Headers, dropped: frozenset[str], redactor: Redactor
) -> dict[str, str]:
    """Headers by lower-cased name (repeated ones joined with ", ", as HTTP allows)."""
    kept: dict[str, str] = {}
    for name, value in headers.multi_items():
        lowered = name.lower()
        if lowered in dropped or SECRET_PARAM.search(lowered.replace("-", "_")):
            continue
        if redactor.holds_secret(value):
            continue  # a connection's own header that carries its key (`X-Api-Key`)
        kept[lowered] = f"{kept[lowered]}, {value}" if lowered in kept else value
    return kept


def _body(content: bytes, content_type: str, redactor: Redactor) -> dict[str, Any]:
    """A body as stored: `{"json": ...}`, `{"text": ...}` or `{"base64": ...}` (masked)."""
    if not content:
        return {}
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(content).decode("ascii")}
    if "x-www-form-urlencoded" in content_type:
        # `client_secret=...&code=...`: masked by name as a query string would be.
        text = redactor.url("?" + text)[1:]
    text = redactor.text(text)
    if "json" in content_type or text[:1] in ("{", "["):
        try:
            return {"json": _mask_fields(orjson.loads(text))}
        except orjson.JSONDecodeError:
            pass
    return {"text": text}


def _body_bytes(stored: dict[str, Any]) -> bytes:
    if "json" in stored:
        return orjson.dumps(stored["json"])
    if "text" in stored:
        return str(stored["text"]).encode("utf-8")
    if "base64" in stored:
        return base64.b64decode(stored["base64"])
    return b""


def _body_key(stored: dict[str, Any]) -> str:
    """The text a request body is matched by: canonical JSON, or the text as stored."""
    if "json" in stored:
        return orjson.dumps(stored["json"], option=orjson.OPT_SORT_KEYS).decode()
    if "text" in stored:
        return str(stored["text"])
    return str(stored.get("base64", ""))


def record_exchange(
    connection: str,
    request: httpx.Request,
    response: httpx.Response,
    redactor: Redactor,
    *,
    base_url: str = "",
) -> Exchange:
    """One exchange as a cassette stores it, masked with the connection's redactor; a URL
    under `base_url` is stored relative to it (`/products/1`).

    Call it late (when the client closes): a token issued during the read is known to the
    redactor only once the auth flow has read it.
    """
    stored_request: dict[str, Any] = {
        "method": request.method,
        "url": _masked_url(request, redactor, base_url),
    }
    headers = _masked_headers(request.headers, _DROPPED_REQUEST_HEADERS, redactor)
    if headers:
        stored_request["headers"] = headers
    content_type = request.headers.get("content-type", "")
    body = _body(request.content, content_type, redactor)
    if body:
        stored_request["body"] = body
    stored_response: dict[str, Any] = {"status": response.status_code}
    headers = _masked_headers(response.headers, _DROPPED_RESPONSE_HEADERS, redactor)
    if headers:
        stored_response["headers"] = headers
    stored_response.update(
        _body(response.content, response.headers.get("content-type", ""), redactor)
    )
    return {"connection": connection, "request": stored_request, "response": stored_response}


# -- matching -----------------------------------------------------------------------------


def _matcher(text: str) -> re.Pattern[str] | str:
    """Exact text, or a pattern where each masked part (`***`) matches any value."""
    if MASK not in text:
        return text
    return re.compile(".+?".join(re.escape(part) for part in text.split(MASK)), re.DOTALL)


def _matches(matcher: re.Pattern[str] | str, text: str) -> bool:
    if isinstance(matcher, str):
        return matcher == text
    return matcher.fullmatch(text) is not None


class _Recorded:
    __slots__ = ("body", "exchange", "url", "used")

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        request = exchange["request"]
        self.url = _matcher(str(request["url"]))
        self.body = _matcher(_body_key(request.get("body") or {}))
        self.used = False


# -- the file ---------------------------------------------------------------------------


def _sort_key(exchange: Exchange) -> tuple[str, str, str, str]:
    request = exchange["request"]
    return (
        str(exchange.get("connection", "")),
        str(request["method"]),
        str(request["url"]),
        _body_key(request.get("body") or {}),
    )


class Cassette:
    """The exchanges of one cassette file, for recording into or replaying from.

    ```python
    cassette = Cassette.load("tests/cassettes/shop")     # tests/cassettes/shop.json
    response = cassette.replay(request, redactor)        # or CassetteMissError
    ```

    Recording and replaying go through transports (`RecordingTransport`,
    `ReplayTransport`); one cassette may serve every connection of a run.
    """

    version: ClassVar[int] = CASSETTE_VERSION

    def __init__(self, path: str | os.PathLike[str], exchanges: Iterable[Exchange] = ()) -> None:
        self.path = cassette_path(path)
        self.exchanges: list[Exchange] = list(exchanges)
        self._lock = threading.Lock()
        self._recorded: list[_Recorded] | None = None
        self._last: dict[tuple[str, str, str], _Recorded] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Cassette:
        """Read a cassette file; ConfigError naming it when it is missing or not one."""
        file = cassette_path(path)
        try:
            data = orjson.loads(file.read_bytes())
        except FileNotFoundError:
            raise ConfigError(
                f"no cassette at {file}; record one with "
                f"`interlink read RESOURCE --record {file.with_suffix('')}`"
            ) from None
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{file}: not a cassette (invalid JSON: {exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("exchanges"), list):
            raise ConfigError(f"{file}: not a cassette (expected an object with `exchanges`)")
        if data.get("interlink_cassette") != CASSETTE_VERSION:
            raise ConfigError(
                f"{file}: cassette version {data.get('interlink_cassette')!r}; this interlink "
                f"reads version {CASSETTE_VERSION} (record it again)"
            )
        return cls(file, data["exchanges"])

    def add(self, exchanges: Iterable[Exchange]) -> None:
        """Keep more recorded exchanges (from any thread)."""
        with self._lock:
            self.exchanges.extend(exchanges)
            self._recorded = None

    def save(self) -> Path:
        """Write the cassette (directories made as needed), in its deterministic order."""
        with self._lock:
            ordered = sorted(self.exchanges, key=_sort_key)
            data = {"interlink_cassette": CASSETTE_VERSION, "exchanges": ordered}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(self.path.name + ".partial")
            partial.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
            partial.replace(self.path)
        return self.path

    def replay(
        self, request: httpx.Request, redactor: Redactor, *, base_url: str = ""
    ) -> httpx.Response:
        """The recorded response to `request`, or CassetteMissError naming it.

        `base_url` is the connection's: URLs under it were recorded relative to it.
        """
        method = request.method
        url = _masked_url(request, redactor, base_url)
        content_type = request.headers.get("content-type", "")
        body = _body_key(_body(request.content, content_type, redactor))
        found = self._find(method, url, body)
        if found is None:
            raise self._miss(method, url, shown=_masked_url(request, redactor))
        stored = found.exchange["response"]
        return httpx.Response(
            int(stored["status"]),
            headers={str(k): str(v) for k, v in (stored.get("headers") or {}).items()},
            content=_body_bytes(stored),
            request=request,
        )

    def _find(self, method: str, url: str, body: str) -> _Recorded | None:
        with self._lock:
            if self._recorded is None:
                self._recorded = [_Recorded(e) for e in self.exchanges]
                self._last = {}
            key = (method, url, body)
            for recorded in self._recorded:
                if (
                    not recorded.used
                    and recorded.exchange["request"]["method"] == method
                    and _matches(recorded.url, url)
                    and _matches(recorded.body, body)
                ):
                    recorded.used = True
                    self._last[key] = recorded
                    return recorded
            # Every recorded answer to it was given: the last one repeats.
            return self._last.get(key)

    def _miss(self, method: str, url: str, *, shown: str) -> CassetteMissError:
        path = url.partition("?")[0]
        near = sorted(
            {
                f"{e['request']['method']} {e['request']['url']}"
                for e in self.exchanges
                if str(e["request"]["url"]).partition("?")[0] == path
            }
        )
        hint = f"; recorded at that path: {', '.join(near[:3])}" if near else ""
        more = f" (and {len(near) - 3} more)" if len(near) > 3 else ""
        return CassetteMissError(
            f"never recorded in cassette {self.path} ({len(self.exchanges)} exchanges)"
            f"{hint}{more}; record it again with --record",
            method=method,
            url=shown,
            cassette=self.path,
        )

    def __len__(self) -> int:
        return len(self.exchanges)

    def __repr__(self) -> str:
        return f"Cassette(path={str(self.path)!r}, exchanges={len(self.exchanges)})"
