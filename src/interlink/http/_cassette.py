"""Cassettes: the HTTP exchanges of a read, kept in one JSON file to be replayed offline.

A cassette holds what a connection sent and what came back, with everything secret taken
out before it is written: the connection's `Redactor` masks every secret it knows (API
keys, tokens, client secrets, in URLs, headers and bodies); `Authorization`,
`Proxy-Authorization`, cookies and any header holding a secret are dropped; credentials in
URLs (userinfo, the connection's own query parameters) are stripped; JSON fields named
like credentials in any style (`access_token`, `accessToken`, `clientSecret`, `password`)
are masked wherever they sit in a body; and the secret-looking query values of links
(`Location`, `Link`, a URL string in a JSON body, a form body) are masked as in a URL.

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
matching any one value (never the rest of a URL), so a replay needs no real secret. Each
recorded answer is given once, in order; when they are used up the last one repeats (a
poll, a second read).
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

from ._redact import MASK, SECRET_HEADER, SECRET_PARAM, Redactor
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
# JSON fields whose string values are credentials wherever they appear in a body, matched
# on the name lower-cased with everything but letters and digits taken out, so `accessToken`,
# `access-token` and `ACCESS_TOKEN` are one name.
_SECRET_FIELD = re.compile(
    r"token|secret|passw|apikey|privatekey|accesskey|authorization|credential|cookie|"
    r"^pass$|^pwd$|^jwt$|^sessionid$|^signature$"
)
# Named like a credential, holding none.
_PLAIN_FIELDS = frozenset({"tokentype"})
# A body that is a form (`access_token=...&scope=repo`), whatever its content type says.
_FORM = re.compile(r"^[\w.%+\-\[\]]+=[^\s&]*(?:&[\w.%+\-\[\]]+=[^\s&]*)*$")
# What a masked part (`***`) stands for when matching: one value, never the rest of a URL
# or of a JSON document.
_ONE_VALUE = r'[^&#?/\s"]+'


def _secret_field(key: object) -> bool:
    if not isinstance(key, str):
        return False
    name = re.sub(r"[^a-z0-9]", "", key.lower())
    return name not in _PLAIN_FIELDS and _SECRET_FIELD.search(name) is not None


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


def _mask_fields(value: Any, redactor: Redactor) -> Any:
    """A JSON value with credential fields masked, and the secret query values of every
    link in it (`"next": "https://.../p?access_token=..."`) masked as in a URL."""
    if isinstance(value, dict):
        return {
            key: MASK
            if _secret_field(key) and isinstance(item, str) and item
            else _mask_fields(item, redactor)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_fields(item, redactor) for item in value]
    if isinstance(value, str) and "=" in value and value.startswith(("http://", "https://", "/")):
        return redactor.url(value)
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
        if (
            lowered in dropped
            or SECRET_PARAM.search(lowered.replace("-", "_"))
            or SECRET_HEADER.search(lowered)
        ):
            continue
        if redactor.holds_secret(value):
            continue  # a connection's own header that carries its key (`X-Api-Key`)
        # A `Location` or `Link` carries URLs: their secret query values are masked as in
        # a request's URL (a presigned link's `X-Amz-Security-Token`, an `access_token`).
        [(_, value)] = redactor.headers([(lowered, value)])
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
    if "x-www-form-urlencoded" in content_type or _FORM.match(text.strip()):
        # `client_secret=...&code=...`, or a token endpoint's `access_token=...&scope=...`
        # sent as text/plain: masked by name as a query string would be.
        text = redactor.url("?" + text)[1:]
    text = redactor.text(text)
    if "json" in content_type or text[:1] in ("{", "["):
        try:
            return {"json": _mask_fields(orjson.loads(text), redactor)}
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
    """Exact text, or a pattern where each masked part (`***`) matches any one value (up
    to the next `&`, `/`, `?`, `#`, quote or space: never the rest of the URL)."""
    if MASK not in text:
        return text
    return re.compile(_ONE_VALUE.join(re.escape(part) for part in text.split(MASK)))


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


def _exchange_problem(exchange: Any) -> str:
    """What is wrong with one stored exchange (empty when nothing is)."""
    if not isinstance(exchange, dict):
        return f"expected an object with `request` and `response`; got {type(exchange).__name__}"
    request, response = exchange.get("request"), exchange.get("response")
    if not isinstance(request, dict):
        return "no `request` object"
    if not isinstance(request.get("method"), str) or not isinstance(request.get("url"), str):
        return "its `request` needs a `method` and a `url` (strings)"
    if not isinstance(response, dict):
        return "no `response` object"
    if not isinstance(response.get("status"), int):
        return "its `response` needs a `status` (an integer)"
    for part, where in ((request, "request"), (response, "response")):
        if not isinstance(part.get("headers", {}), dict):
            return f"its `{where}.headers` must be an object"
    if not isinstance(request.get("body", {}), dict):
        return "its `request.body` must be an object (`json`, `text` or `base64`)"
    return ""


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
        for number, exchange in enumerate(data["exchanges"], 1):
            problem = _exchange_problem(exchange)
            if problem:
                raise ConfigError(
                    f"{file}: exchange {number}: {problem}; record the cassette again"
                )
        return cls(file, data["exchanges"])

    @classmethod
    def new(cls, path: str | os.PathLike[str]) -> Cassette:
        """An empty cassette to record into, replacing the file when it is a cassette.

        ConfigError when the file exists and is not a cassette (`--record data` next to a
        `data.json` of the user's): it is never overwritten.
        """
        file = cassette_path(path)
        if file.exists():
            try:
                data = orjson.loads(file.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                data = None
            if not isinstance(data, dict) or "interlink_cassette" not in data:
                raise ConfigError(
                    f"{file} exists and is not a cassette; not overwritten (record into "
                    f"another name, or remove the file)"
                )
        return cls(file)

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
