"""The probe's battery: hostile requests against a live `interlink serve` on 127.0.0.1.

Each request goes over a real socket (raw bytes where an HTTP client would refuse to send
them) and each answer must be the documented status in the JSON envelope, with no
traceback in it. After every test the server's own output (stdout with uvicorn's access
log at info, stderr) must hold no traceback, none of the API keys and nothing the HTTP
parser said. Every test runs once on each HTTP/1.1 parser (`interlink serve --http h11`
and `--http httptools`): both are held to the same answers, and where llhttp is stricter
than h11 the test says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from interlink.store import Store, create_api_key

from .serving import PARSERS, RawAnswer, Served, raw_request, serve_live

API = "/api/v1"
MAX_BODY = 1024


@pytest.fixture(scope="module")
def keys_and_config(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("hostile")
    database = f"sqlite:///{folder / 'interlink.db'}"
    config = folder / "interlink.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": database,
                "server": {
                    # Many failed attempts come from 127.0.0.1 here; the lock-out has its
                    # own test with its own server below.
                    "rate_limits": {"default": "100000/min", "POST /jobs": "100000/min"},
                    "max_body": f"{MAX_BODY}B",
                },
                "jobs": {"poll_interval": "50ms"},
            }
        )
    )
    store = Store.open(database)
    keys = {scope: create_api_key(store.engine, scope, scope).secret for scope in SCOPES}
    store.close()
    return config, keys


SCOPES = ("read", "write", "admin")


@pytest.fixture(scope="module", params=PARSERS)
def parser(request) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def live(keys_and_config, parser) -> Iterator[Served]:
    config, _ = keys_and_config
    with serve_live(config, "--log-level", "info", "--http", parser) as served:
        assert served.parser == parser
        yield served


# What h11 and llhttp say when they refuse (the start of each of their messages): the
# answers never quote them, nor does the server's log.
PARSER_WORDS = (
    "illegal header line",
    "illegal request line",
    "Invalid header",
    "Invalid character",
    "Invalid char in url",
    "Invalid method",
    "Duplicate Content-Length",
    "callback error",
    "HttpParser",
    "RemoteProtocolError",
)


@pytest.fixture
def keys(keys_and_config) -> dict[str, str]:
    return keys_and_config[1]


@pytest.fixture(autouse=True)
def _clean_output(request, keys_and_config):
    """After each test: no traceback and no API key anywhere in the server's output."""
    yield
    if "live" not in request.fixturenames:
        return
    served: Served = request.getfixturevalue("live")
    output = served.output()
    assert "Traceback" not in output, output[-3000:]
    assert "Exception in" not in output, output[-3000:]
    for secret in keys_and_config[1].values():
        assert secret not in output
        assert secret.split("_")[2] not in output  # not even the secret part alone
    for words in PARSER_WORDS:
        assert words not in output, output[-3000:]


def http(method: str, target: str, *headers: str, body: bytes = b"", version: str = "1.1") -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def bearer(key: str) -> str:
    return f"Authorization: Bearer {key}"


def assert_envelope(answer: RawAnswer, status: int, code: str) -> dict:
    assert answer.status == status, answer.raw[:600]
    assert answer.headers["content-type"] == "application/json", answer.headers
    body = json.loads(answer.body)
    assert body["status"] == "error" and body["error"]["code"] == code, body
    assert body["meta"]["request_id"] == answer.headers["x-request-id"]
    assert body["error"]["message"] and isinstance(body["error"]["details"], list)
    assert b"Traceback" not in answer.raw and b'File "' not in answer.raw
    for words in PARSER_WORDS:
        assert words.encode() not in answer.raw, answer.raw
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    return body["error"]


def only_one_answer(answer: RawAnswer) -> None:
    assert answer.raw.count(b"HTTP/1.1 ") == 1, answer.raw


# -- request smuggling and framing (uvicorn and its parser on the socket) ----------------


@pytest.mark.parametrize("length", ["4", "0", "1000"])
def test_content_length_with_chunked_is_refused_and_the_smuggled_request_never_runs(
    live, keys, length
):
    smuggled = http("GET", f"{API}/jobs", bearer(keys["admin"]))
    data = http(
        "POST",
        f"{API}/jobs",
        bearer(keys["admin"]),
        "Content-Type: application/json",
        f"Content-Length: {length}",
        "Transfer-Encoding: chunked",
        body=b"0\r\n\r\n" + smuggled,
    )
    answer = raw_request(live.address, data)
    error = assert_envelope(answer, 400, "INVALID_REQUEST")
    assert error["details"][0]["field"] == "Transfer-Encoding"
    assert answer.closed and answer.headers["connection"] == "close"
    only_one_answer(answer)


@pytest.mark.parametrize(
    ("header", "status", "code", "field"),
    [
        ("Content-Length: -1", 400, "INVALID_REQUEST", "Content-Length"),
        ("Content-Length: 12abc", 400, "INVALID_REQUEST", "Content-Length"),
        ("Content-Length: 5\r\nContent-Length: 6", 400, "INVALID_REQUEST", "Content-Length"),
        ("Transfer-Encoding: gzip, chunked", 501, "NOT_IMPLEMENTED", "Transfer-Encoding"),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            501,
            "NOT_IMPLEMENTED",
            "Transfer-Encoding",
        ),
        ("X-Trace: a\x00b", 400, "INVALID_REQUEST", "headers"),
        ("X-Trace: a\rb", 400, "INVALID_REQUEST", "headers"),
        ("Bad Header Name: x", 400, "INVALID_REQUEST", "headers"),
    ],
)
def test_malformed_framing_and_headers_are_answered_in_the_envelope(
    live, keys, header, status, code, field
):
    data = http("POST", f"{API}/jobs", bearer(keys["admin"]), header, body=b"{}")
    answer = raw_request(live.address, data)
    error = assert_envelope(answer, status, code)
    assert error["details"][0]["field"] == field
    assert keys["admin"] not in answer.body.decode("latin-1")
    assert answer.closed


@pytest.mark.parametrize(
    "data",
    [
        b"GET /api/v1/jobs\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"G\x00T /api/v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/v1/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/v1/jobs HTTP/1.1\r\n\r\n",  # no Host
        b"GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"GET /api/v1/jobs HTTP/1.1\r\n folded: x\r\nHost: x\r\n\r\n",
        b"GET /api/v1/jobs HTTP/9.9\r\nHost: x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # an HTTP/2 preface
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS hello
        b"GET\r\n\r\n",
    ],
    ids=[
        "nul-target",
        "nul-method",
        "non-ascii-target",
        "no-host",
        "two-hosts",
        "fold-first",
        "bad-version",
        "h2-preface",
        "tls",
        "short",
    ],
)
def test_malformed_request_lines_are_400_in_the_envelope(live, data):
    answer = raw_request(live.address, data)
    if b"HTTP/9.9" in data or b"HTTP/2.0" in data:  # well-formed, a version we do not speak
        assert_envelope(answer, 505, "HTTP_VERSION_NOT_SUPPORTED")
    else:
        assert_envelope(answer, 400, "INVALID_REQUEST")
    assert answer.closed


def test_a_bad_chunked_body_is_400_in_the_envelope(live, keys):
    data = http(
        "POST",
        f"{API}/jobs",
        bearer(keys["admin"]),
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        body=b"zz\r\n{}\r\n0\r\n\r\n",
    )
    answer = raw_request(live.address, data)
    assert_envelope(answer, 400, "INVALID_REQUEST")


@pytest.mark.parametrize("complete", [True, False], ids=["whole", "still-arriving"])
@pytest.mark.parametrize("shape", ["one-huge-header", "many-headers", "huge-target"])
def test_oversized_request_heads_are_431_in_the_envelope(live, keys, shape, complete):
    if shape == "one-huge-header":
        head = http("GET", f"{API}/jobs", bearer(keys["read"]), "X-Big: " + "a" * 20_000)
    elif shape == "many-headers":
        head = http("GET", f"{API}/jobs", *[f"X-H{i}: {'b' * 60}" for i in range(300)])
    else:
        head = http("GET", f"{API}/jobs?q=" + "c" * 20_000)
    # One still arriving past the limit is refused by the protocol before it ends. Under
    # h11 a head that arrives whole is parsed, then refused by the app (FramingMiddleware);
    # the httptools protocol counts the head as it is parsed and refuses it itself. About
    # 20 KB: one loopback segment, so the server never closes on unread bytes (an RST
    # could then discard its answer before the test reads it).
    answer = raw_request(live.address, head if complete else head[:-4])
    error = assert_envelope(answer, 431, "HEADERS_TOO_LARGE")
    assert error["details"][0]["field"] == "headers" and "16384" in error["message"]
    by_parser = error["details"][0]["issue"] == "refused by the HTTP parser"
    assert by_parser is (not complete or live.parser == "httptools")
    assert answer.closed


# -- methods, redirects and paths --------------------------------------------------------


@pytest.mark.parametrize(
    "method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FROB", "CONNECT"]
)
@pytest.mark.parametrize("scope", ["read", "write"])
def test_bad_methods_are_405_whatever_the_scope(live, keys, method, scope):
    target = "127.0.0.1:443" if method == "CONNECT" else f"{API}/jobs"
    answer = raw_request(
        live.address, http(method, target, bearer(keys[scope]), "Connection: close")
    )
    if method == "CONNECT":
        # h11 and llhttp read an authority-form target; it is no route of ours.
        assert answer.status in (400, 404, 405), answer.raw[:300]
        assert answer.headers["content-type"] == "application/json"
        return
    if method == "FROB" and live.parser == "httptools":
        # llhttp knows a fixed list of methods: any other is a malformed request line.
        error = assert_envelope(answer, 400, "INVALID_REQUEST")
        assert error["details"][0]["field"] == "request line"
        return
    assert_envelope(answer, 405, "METHOD_NOT_ALLOWED")
    assert answer.headers["allow"] == "GET, HEAD, POST"


def test_http_1_0_without_host_is_served(live):
    answer = raw_request(live.address, b"GET /api/v1/health HTTP/1.0\r\n\r\n")
    assert answer.status == 200 and json.loads(answer.body)["data"]["status"] == "ok"


def test_head_is_get_without_a_body(live, keys):
    with httpx.Client() as client:
        get = client.get(
            f"{live.url}/pipelines", headers={"Authorization": f"Bearer {keys['read']}"}
        )
        head = client.head(
            f"{live.url}/pipelines", headers={"Authorization": f"Bearer {keys['read']}"}
        )
    assert get.status_code == head.status_code == 200
    assert head.content == b"" and head.headers["content-length"] == get.headers["content-length"]


@pytest.mark.parametrize("path", [f"{API}/jobs/", f"{API}/runs/", f"{API}/pipelines/"])
def test_no_redirect_whatever_the_host_header(live, keys, path):
    data = (
        f"GET {path} HTTP/1.1\r\nHost: evil.example\r\n{bearer(keys['read'])}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    answer = raw_request(live.address, data)
    assert_envelope(answer, 404, "NOT_FOUND")
    assert "location" not in answer.headers and b"evil.example" not in answer.raw


@pytest.mark.parametrize(
    "target",
    [
        f"{API}/jobs/../../../etc/passwd",
        f"{API}/jobs/..%2f..%2f..%2fetc%2fpasswd",
        f"{API}/apps/..%2F..%2Fetc%2Fpasswd/status",
        f"{API}/runs/%2e%2e/%2e%2e/etc/passwd",
        f"{API}/..%5c..%5cwindows%5cwin.ini",
        "/../../etc/passwd",
        f"{API}/jobs/1%00.json",
        f"{API}/jobs/%ff%fe",
        f"http://evil.example{API}/jobs",
        "*",
    ],
)
def test_path_traversal_strings_are_404(live, keys, target):
    answer = raw_request(
        live.address, http("GET", target, bearer(keys["admin"]), "Connection: close")
    )
    if answer.status == 422:  # /jobs/{id} with a non-integer id
        assert_envelope(answer, 422, "VALIDATION_ERROR")
    else:
        assert_envelope(answer, 404, "NOT_FOUND")
    assert b"root:" not in answer.raw and b"[fonts]" not in answer.raw


# -- keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "Bearer il_zzzzzzzz_" + "x" * 43,
        "Bearer " + "il_" * 3000,
        "Bearer il_\u00e9\u00e8_caf\u00e9",
        "Bearer ' OR 1=1 --",
        "bearer",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer {key}x",
        "Bearer {key_upper}",
    ],
)
def test_invalid_keys_are_401_and_never_echoed(live, keys, value):
    value = value.format(key=keys["admin"], key_upper=keys["admin"].upper())
    data = http("GET", f"{API}/jobs", f"Authorization: {value}", "Connection: close")
    answer = raw_request(live.address, data.decode("latin-1").encode("utf-8"))
    assert_envelope(answer, 401, "UNAUTHORIZED")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert keys["admin"] not in answer.body.decode("utf-8", "replace")


# -- bodies ------------------------------------------------------------------------------


def test_oversized_bodies_are_413_before_they_are_read(live, keys):
    declared = http(
        "POST",
        f"{API}/jobs",
        bearer(keys["write"]),
        "Content-Type: application/json",
        f"Content-Length: {50 * 1024 * 1024}",
    )
    answer = raw_request(live.address, declared)  # the 50 MiB are never sent
    assert_envelope(answer, 413, "PAYLOAD_TOO_LARGE")

    chunk = b"%x\r\n%s\r\n" % (4096, b" " * 4096)
    streamed = http(
        "POST",
        f"{API}/jobs",
        bearer(keys["write"]),
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        body=chunk * 4 + b"0\r\n\r\n",
    )
    assert_envelope(raw_request(live.address, streamed), 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"kind": "noop"', "application/json", 400, "INVALID_REQUEST"),
        (b'{"kind": "no\x00op"}', "application/json", 400, "INVALID_REQUEST"),
        (b'{"kind": "noop", "pipeline": "\\u0000"}', "application/json", 422, "VALIDATION_ERROR"),
        (b"\xff\xfe{}", "application/json", 400, "INVALID_REQUEST"),
        (b"[]", "application/json", 422, "VALIDATION_ERROR"),
        (b'{"priority": 1e400}', "application/json", 422, "VALIDATION_ERROR"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 422, "VALIDATION_ERROR"),
        (b"kind=noop", "application/x-www-form-urlencoded", 400, "INVALID_REQUEST"),
    ],
    ids=["truncated", "nul", "escaped-nul", "bad-utf8", "array", "huge-number", "deep", "form"],
)
def test_bad_json_bodies_are_400_or_422(live, keys, body, content_type, status, code):
    if len(body) > MAX_BODY:
        status, code = 413, "PAYLOAD_TOO_LARGE"
    data = http(
        "POST",
        f"{API}/jobs",
        bearer(keys["write"]),
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        body=body,
    )
    assert_envelope(raw_request(live.address, data), status, code)


# -- what the server writes down ---------------------------------------------------------


def test_secret_query_values_are_masked_in_the_access_log(live, keys):
    names = [
        "api_key",
        "key",
        "token",
        "access_token",
        "secret",
        "password",
        "client_secret",
        "signature",
        "sig",
        "Api-Key",
        "api%5Fkey",
    ]
    query = "&".join(f"{name}={keys['admin']}" for name in names) + "&limit=7&pipeline=xyz"
    with httpx.Client() as client:
        response = client.get(f"{live.url}/health?{query}")
        assert response.status_code == 422  # unknown query parameters
        client.get(f"{live.url}/jobs/{keys['read']}", headers={"Authorization": "Bearer x"})
    assert live.wait_logged("limit=7&pipeline=xyz")
    assert live.wait_logged("GET /api/v1/jobs/*** HTTP/1.1")  # a key pasted into a path
    logged = [line for line in live.stdout.text().splitlines() if "limit=7" in line]
    assert len(logged) == 1, logged
    for name in names:
        assert f"{name}=***" in logged[0], logged[0]
    # (the autouse check then finds no key anywhere in the output)


@pytest.mark.parametrize("parser", PARSERS)
def test_the_lockout_of_an_address_never_refuses_a_valid_key(tmp_path, parser):
    config = tmp_path / "interlink.yaml"
    database = f"sqlite:///{tmp_path / 'interlink.db'}"
    config.write_text(
        yaml.safe_dump({"database": database, "server": {"rate_limits": {"default": "100/min"}}})
    )
    store = Store.open(database)
    admin = create_api_key(store.engine, "admin", "admin").secret
    store.close()
    with serve_live(config, "--no-worker", "--http", parser) as served, httpx.Client() as client:
        wrong = {"Authorization": "Bearer il_zzzzzzzz_guess"}
        statuses = [client.get(f"{served.url}/jobs", headers=wrong).status_code for _ in range(105)]
        assert statuses[:100] == [401] * 100 and set(statuses[100:]) == {429}
        allowed = client.get(f"{served.url}/jobs", headers={"Authorization": f"Bearer {admin}"})
        assert allowed.status_code == 200, allowed.text
        assert "Traceback" not in served.output()


def test_the_server_log_names_no_request_secret(live, keys):
    """A last sweep over everything the server printed during the battery."""
    output = live.output()
    assert re.search(r'"GET /api/v1/jobs HTTP/1.1" 200', output) or "GET" in output
    for secret in keys.values():
        assert secret not in output
