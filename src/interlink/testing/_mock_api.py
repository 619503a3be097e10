"""`MockApi`: a stand-in API you script per test, served over real HTTP or in memory.

One object, two ways in. `mock.transport()` is an `httpx.MockTransport` for an `ApiClient`
or a `Catalog` (no socket at all); `mock.start()` (or `with MockApi() as mock`) serves the
same answers on `127.0.0.1` at an ephemeral port, so a connection's `base_url` in
`interlink.yaml` can point at `mock.url` and a whole `interlink run` goes through it.

```python
mock = MockApi()
mock.set_response("GET", "/products/123", json={"id": 123, "title": "Test Product"})
mock.set_responses("GET", "/orders", [{"json": [{"id": 1}]}, {"status": 503}], then="repeat")

async with ApiClient("http://shop.test", transport=mock.transport()) as api:
    product = await api.request_json("GET", "/products/123")

mock.assert_called("GET", "/products/123", times=1)
```

A request no rule answers gets a 501 whose JSON error names it (method, path and query)
and is kept in `mock.unmatched`; `mock.verify()` (the `mock_api` fixture calls it after
each test) fails the test listing them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson

__all__ = ["MockApi", "MockRequest", "MockResponse", "Then"]

Then = Literal["error", "repeat"]
"""What a queue of responses does once used up: answer 501 (`error`) or give its last
response again (`repeat`)."""

_UNSET: Any = object()
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class MockResponse:
    """One scripted answer: a status, headers and a body (`json=`, or `content=` bytes/text)."""

    status: int = 200
    json: Any = _UNSET
    content: bytes | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, value: MockResponse | Mapping[str, Any]) -> MockResponse:
        """A response from itself or from a dict of its fields (`{"json": ..., "status": ...}`)."""
        if isinstance(value, MockResponse):
            return value
        unknown = set(value) - {"status", "json", "content", "headers"}
        if unknown:
            raise TypeError(
                f"a mock response takes status, json, content and headers; got {sorted(unknown)}"
            )
        return cls(**value)

    def body(self) -> bytes:
        if self.json is not _UNSET:
            return orjson.dumps(self.json)
        if isinstance(self.content, str):
            return self.content.encode("utf-8")
        return self.content or b""

    def all_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.json is not _UNSET and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        return headers


@dataclass(frozen=True)
class MockRequest:
    """A request the mock received, as the test inspects it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    """Lower-cased names."""
    body: bytes
    matched: bool

    @property
    def params(self) -> dict[str, str]:
        """The query parameters (the last value of a repeated one)."""
        return dict(self.query)

    @property
    def target(self) -> str:
        """`path?query` as it was asked for."""
        if not self.query:
            return self.path
        from urllib.parse import urlencode

        return f"{self.path}?{urlencode(self.query)}"

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (ValueError when it is not JSON)."""
        return orjson.loads(self.body)

    def __str__(self) -> str:
        return f"{self.method} {self.target}"


class _Rule:
    """The answers to one method and path (a `{placeholder}` matches one segment)."""

    def __init__(
        self,
        method: str,
        path: str,
        responses: Sequence[MockResponse],
        then: Then | MockResponse,
        order: int,
    ) -> None:
        split = urlsplit(path)
        self.method = method.upper()
        self.path = split.path or "/"
        self.query = tuple(parse_qsl(split.query, keep_blank_values=True))
        self.pattern = (
            re.compile(
                "".join(
                    f"(?P<{part}>[^/]+)" if i % 2 else re.escape(part)
                    for i, part in enumerate(_PLACEHOLDER.split(self.path))
                )
            )
            if _PLACEHOLDER.search(self.path)
            else None
        )
        self.responses = list(responses)
        self.then = then
        self.order = order
        self.given = 0

    def label(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query)
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")

    def matches_path(self, path: str) -> bool:
        if self.pattern is None:
            return path == self.path
        return self.pattern.fullmatch(path) is not None

    def matches(self, method: str, path: str, query: Iterable[tuple[str, str]]) -> bool:
        if method != self.method or not self.matches_path(path):
            return False
        asked = set(query)
        return all(pair in asked for pair in self.query)

    def rank(self) -> tuple[int, int, int]:
        # A rule with query parameters beats one without, an exact path beats a pattern,
        # and among equals the newest wins.
        return (len(self.query), self.pattern is None, self.order)

    def next(self) -> MockResponse | None:
        if self.given < len(self.responses):
            self.given += 1
            return self.responses[self.given - 1]
        if isinstance(self.then, MockResponse):
            return self.then
        if self.then == "repeat" and self.responses:
            return self.responses[-1]
        return None


def _unmatched(request: MockRequest, message: str) -> MockResponse:
    return MockResponse(
        status=501,
        json={
            "status": "error",
            "error": {"code": "NO_MOCK_RESPONSE", "message": message},
        },
    )


class MockApi:
    """A scripted API: answers by method and path, records every request it gets.

    Rules: `set_response` gives one answer for every matching request; `set_responses`
    gives a queue, one answer per request, then `then` (`"error"`: a 501; `"repeat"`: the
    last answer again; or a `MockResponse` to give from then on). A path may hold a query
    (`/items?page=2` matches requests with at least those parameters) and `{placeholders}`
    (`/products/{id}`). The most specific rule wins; among equals, the newest.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._order = 0
        self.requests: list[MockRequest] = []
        """Every request received, in order."""
        self._server: Any = None
        self.strict = True
        """Whether the `mock_api` fixture fails a test that left requests unanswered."""

    # -- scripting ----------------------------------------------------------------------

    def set_response(
        self,
        method: str,
        path: str,
        *,
        json: Any = _UNSET,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
    ) -> None:
        """Answer every `method path` request with this response (replacing an earlier one)."""
        response = MockResponse(status=status, json=json, content=content, headers=headers or {})
        self.set_responses(method, path, [response], then="repeat")

    def set_mock_response(self, path: str, data: Any) -> None:
        """The integration guide's form: answer `GET path` with JSON `data`."""
        self.set_response("GET", path, json=data)

    def set_responses(
        self,
        method: str,
        path: str,
        responses: Sequence[MockResponse | Mapping[str, Any]],
        *,
        then: Then | MockResponse | Mapping[str, Any] = "error",
    ) -> None:
        """Answer successive `method path` requests with `responses` in order, then `then`."""
        if not responses and not isinstance(then, MockResponse | Mapping):
            raise ValueError(f"set_responses({method!r}, {path!r}): give at least one response")
        if isinstance(then, str) and then not in ("error", "repeat"):
            raise ValueError(f"then: expected 'error', 'repeat' or a response; got {then!r}")
        after: Then | MockResponse = then if isinstance(then, str) else MockResponse.of(then)
        with self._lock:
            self._order += 1
            rule = _Rule(method, path, [MockResponse.of(r) for r in responses], after, self._order)
            self._rules = [
                r
                for r in self._rules
                if (r.method, r.path, r.query) != (rule.method, rule.path, rule.query)
            ]
            self._rules.append(rule)

    def reset(self) -> None:
        """Forget every rule and every request received."""
        with self._lock:
            self._rules.clear()
            self.requests.clear()

    # -- answering ----------------------------------------------------------------------

    def handle(self, request: MockRequest) -> MockResponse:
        """The answer to `request` (recorded in `requests`); both transports call this."""
        with self._lock:
            candidates = [
                r for r in self._rules if r.matches(request.method, request.path, request.query)
            ]
            response = None
            rule = max(candidates, key=_Rule.rank) if candidates else None
            if rule is not None:
                response = rule.next()
            matched = response is not None
            self.requests.append(
                MockRequest(
                    request.method,
                    request.path,
                    request.query,
                    request.headers,
                    request.body,
                    matched,
                )
            )
            if response is not None:
                return response
            if rule is not None:
                message = (
                    f"MockApi: the {len(rule.responses)} queued responses for {rule.label()} "
                    f"were all used; {request} asked for one more"
                )
            else:
                known = ", ".join(r.label() for r in self._rules) or "none"
                message = (
                    f"MockApi has no response for {request} (rules: {known}); add one with "
                    f"set_response({request.method!r}, {request.path!r}, json=...)"
                )
            return _unmatched(request, message)

    def _handle_httpx(self, request: httpx.Request) -> httpx.Response:
        received = MockRequest(
            request.method,
            request.url.path,
            tuple(parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True)),
            {k.lower(): v for k, v in request.headers.items()},
            request.content,
            matched=False,
        )
        answer = self.handle(received)
        return httpx.Response(answer.status, headers=answer.all_headers(), content=answer.body())

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering from this mock, for `ApiClient(transport=...)` or
        `Catalog(config, transport=...)`; nothing goes over the network."""
        return httpx.MockTransport(self._handle_httpx)

    # -- inspecting ---------------------------------------------------------------------

    @property
    def unmatched(self) -> list[MockRequest]:
        """The requests no rule answered (each got a 501)."""
        with self._lock:
            return [r for r in self.requests if not r.matched]

    def calls(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = _UNSET,
    ) -> list[MockRequest]:
        """The requests received for `method path` (a `{placeholder}` matches a segment),
        narrowed to those with these query `params` and this `json` body if given."""
        probe = _Rule(method, path, [], "error", 0)
        wanted = {(k, str(v)) for k, v in (params or {}).items()}
        with self._lock:
            found = [
                r
                for r in self.requests
                if r.method == probe.method
                and probe.matches_path(r.path)
                and all(pair in set(r.query) for pair in probe.query)
                and wanted <= set(r.query)
            ]
        if json is not _UNSET:
            found = [r for r in found if _json_or_none(r) == json]
        return found

    def assert_called(
        self,
        method: str,
        path: str,
        *,
        times: int | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = _UNSET,
    ) -> list[MockRequest]:
        """Fail unless `method path` was requested (exactly `times` times, when given);
        returns the matching requests for further checks."""
        found = self.calls(method, path, params=params, json=json)
        if (times is None and not found) or (times is not None and len(found) != times):
            expected = "at least once" if times is None else f"{times} time(s)"
            narrowed = f" with params {dict(params)}" if params else ""
            narrowed += " with that JSON body" if json is not _UNSET else ""
            received = "\n  ".join(str(r) for r in self.requests) or "(none)"
            raise AssertionError(
                f"expected {method.upper()} {path}{narrowed} {expected}; it came "
                f"{len(found)} time(s). Requests received:\n  {received}"
            )
        return found

    def assert_not_called(self, method: str, path: str) -> None:
        """Fail if `method path` was requested at all."""
        self.assert_called(method, path, times=0)

    def verify(self) -> None:
        """Fail (AssertionError) if any request went unanswered, listing them."""
        missed = self.unmatched
        if missed:
            listed = "\n  ".join(str(r) for r in missed)
            raise AssertionError(
                f"MockApi answered {len(missed)} request(s) with 501 because no rule "
                f"matched:\n  {listed}"
            )

    # -- serving ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL of the running server (`http://127.0.0.1:PORT`); see `start()`."""
        if self._server is None:
            raise RuntimeError("the MockApi is not serving; call start() or use `with MockApi()`")
        url: str = self._server.url
        return url

    def start(self) -> MockApi:
        """Serve on 127.0.0.1 at an ephemeral port; returns once it accepts connections."""
        if self._server is not None:
            raise RuntimeError("the MockApi is already serving")
        from interlink.sandbox import SandboxServer

        from ._mock_app import mock_app

        server = SandboxServer(mock_app(self))
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving (the rules and the requests received are kept)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> MockApi:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> MockApi:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._server.url if self._server is not None else "not serving"
        return f"MockApi({where}, rules={len(self._rules)}, requests={len(self.requests)})"


def _json_or_none(request: MockRequest) -> Any:
    try:
        return request.json()
    except orjson.JSONDecodeError:
        return _UNSET
