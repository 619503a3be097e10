"""The two HTTP/1.1 parsers of `interlink serve` held to the same answers, over real sockets.

h11 (pure Python) and httptools (llhttp, in C) disagree on a few requests; the protocol
classes close the gaps that matter (Host, Transfer-Encoding, the head limit, upgrades,
absolute-form targets, pipelining). Each test here runs on both parsers, except the last
ones, which pin down where llhttp stays stricter (or looser) than h11, harmlessly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httptools
import pytest
import yaml

from interlink.server._protocol_httptools import parser_problem

from .serving import PARSERS, RawAnswer, Served, raw_request, serve_live

HEALTH = "/api/v1/health"


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("parsers")
    path = folder / "interlink.yaml"
    path.write_text(yaml.safe_dump({"database": f"sqlite:///{folder / 'interlink.db'}"}))
    return path


@pytest.fixture(scope="module", params=PARSERS)
def live(request, config) -> Iterator[Served]:
    with serve_live(config, "--no-worker", "--http", request.param) as served:
        assert served.parser == request.param
        yield served
        output = served.output()
        assert "Traceback" not in output, output[-3000:]


def get(target: str = HEALTH, *headers: str, version: str = "1.1") -> bytes:
    lines = [f"GET {target} HTTP/{version}", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def statuses(answer: RawAnswer) -> list[int]:
    """The status of every answer on the connection, in order."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer.raw)]


def last_error(answer: RawAnswer) -> dict:
    """The error envelope of the last answer on the connection."""
    body = answer.raw.rpartition(b"\r\n\r\n")[2]
    error = json.loads(body)["error"]
    assert error["details"][0]["issue"] == "refused by the HTTP parser", error
    return error


# -- upgrades: nothing is upgraded, and nothing hides behind one ---------------------------


def test_an_upgrade_request_is_served_and_the_connection_goes_on(live):
    upgrade = get(HEALTH, "Connection: Upgrade", "Upgrade: websocket")
    h2c = get(HEALTH, "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AA")
    answer = raw_request(live.address, upgrade + h2c + get(HEALTH, "Connection: close"))
    assert statuses(answer) == [200, 200, 200]
    assert answer.closed


def test_an_upgrade_request_with_a_body_never_runs_the_body_as_a_request(live):
    smuggled = get("/api/v1/openapi.json")
    data = (
        f"POST {HEALTH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: foo\r\n"
        f"Content-Length: {len(smuggled)}\r\n\r\n"
    ).encode() + smuggled
    answer = raw_request(live.address, data)
    # h11 reads the body by its Content-Length and answers the POST (405); llhttp would
    # read it as the next request, so the httptools protocol refuses the request.
    if live.parser == "httptools":
        assert statuses(answer) == [400] and answer.closed
        assert last_error(answer)["details"][0]["field"] == "Upgrade"
    else:
        assert statuses(answer) == [405]
    assert b"openapi" not in answer.raw


def test_connect_is_no_route_and_the_connection_goes_on(live):
    connect = b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n"
    answer = raw_request(live.address, connect + get(HEALTH, "Connection: close"))
    first, second = statuses(answer)
    assert first in (404, 405) and second == 200


def test_an_absolute_form_target_is_no_route(live):
    answer = raw_request(live.address, get(f"http://evil.example{HEALTH}", "Connection: close"))
    assert statuses(answer) == [404]


# -- pipelining: answers in order, a refusal in its turn -----------------------------------


def test_pipelined_requests_are_answered_in_order(live):
    answer = raw_request(live.address, get() * 3 + get("/nothing", "Connection: close"))
    assert statuses(answer) == [200, 200, 200, 404]


def test_nothing_after_a_connection_close_request_is_answered(live):
    bad = b"GET / HTTP/1.1\r\nHost: x\r\nX-Trace: a\x00b\r\n\r\n"
    for after in (get(), bad):
        answer = raw_request(live.address, get(HEALTH, "Connection: close") + after)
        assert statuses(answer) == [200] and answer.closed


@pytest.mark.parametrize(
    ("second", "status", "field"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Trace: a\x00b\r\n\r\n", 400, "headers"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, None),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "Host"),
        (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505, None),
    ],
    ids=["nul", "encoding", "no-host", "version"],
)
def test_a_refused_request_behind_good_ones_is_answered_after_them(live, second, status, field):
    # httptools parses the second request while the first is still being answered: its
    # refusal waits for the answers before it (h11 reads one request at a time).
    answer = raw_request(live.address, get() + get() + second)
    assert statuses(answer) == [200, 200, status]
    if field:  # (h11 parses HTTP/9.9 and the app refuses it)
        assert last_error(answer)["details"][0]["field"] == field
    assert answer.closed


# -- the head limit, whatever way the bytes arrive ----------------------------------------


def test_a_head_arriving_in_pieces_is_refused_once_past_the_limit(live):
    head = get(HEALTH, "X-Big: " + "a" * 30_000)[:-4]  # never ends
    pieces = [head[:7000], head[7000:14000], head[14000:21000]]
    answer = raw_request(live.address, pieces, pause=0.2)
    assert statuses(answer) == [431] and answer.closed
    error = last_error(answer)
    assert error["details"][0]["field"] == "headers" and "16384" in error["message"]


def test_a_big_head_under_the_limit_is_served_however_it_arrives(live):
    big = get(HEALTH, "X-Pad: " + "p" * 12_000)
    assert statuses(raw_request(live.address, big)) == [200]
    assert statuses(raw_request(live.address, [big[:6000], big[6000:]])) == [200]
    # Behind another big request on the same connection, its end arriving later: the two
    # heads together are over the limit, each alone is not.
    first = get(HEALTH, "X-Pad: " + "q" * 10_000)
    answer = raw_request(live.address, [first + big[:-100], big[-100:]])
    assert statuses(answer) == [200, 200]


def test_a_head_past_the_limit_behind_a_good_request_is_431_after_its_answer(live):
    huge = get(HEALTH, "X-Big: " + "b" * 20_000)[:-4]
    answer = raw_request(live.address, get() + huge)
    assert statuses(answer) == [200, 431] and answer.closed


# -- where llhttp and h11 still differ ----------------------------------------------------

# (request, what h11 answers, what llhttp answers): each difference is a refusal on one
# side of a request that frames the same either way, so nothing can be smuggled by it.
DIFFERENCES = [
    (
        b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2"
        b"\r\n\r\n{}",
        405,
        400,
    ),
    (b"GET /api/v1/health HTTP/1.1\nHost: x\n\n", 200, 400),  # bare LF line ends
    (b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 200, 400),  # obs-fold
    (b"get /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n", 405, 400),  # not a method llhttp knows
    (b"FROB /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n", 405, 400),
    (b"GET  /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n", 400, 200),  # two spaces
    (b"\r\nGET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n", 400, 200),  # a blank line first
]


@pytest.mark.parametrize(
    ("data", "h11_status", "httptools_status"),
    DIFFERENCES,
    ids=["same-length-twice", "bare-lf", "obs-fold", "lower-case", "frob", "two-spaces", "crlf"],
)
def test_where_the_parsers_differ(live, data, h11_status, httptools_status):
    answer = raw_request(live.address, data)
    expected = h11_status if live.parser == "h11" else httptools_status
    assert statuses(answer) == [expected], answer.raw[:300]
    assert answer.headers["content-type"] == "application/json"


# -- llhttp's refusals, mapped (no server) ------------------------------------------------


class _Sink:
    def on_header(self, name: bytes, value: bytes) -> None: ...


def _refusal(data: bytes) -> httptools.HttpParserError:
    parser = httptools.HttpRequestParser(_Sink())
    with pytest.raises(httptools.HttpParserError) as caught:
        parser.feed_data(data)
    return caught.value


@pytest.mark.parametrize(
    ("data", "status", "field"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
            "Content-Length",
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            "Transfer-Encoding",
        ),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Transfer-Encoding"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Key: il_\x00secret\r\n\r\n", 400, "headers"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Key: il_\rsecret\r\n\r\n", 400, "headers"),
        (b"GET /\x00il_secret HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request line"),
        (b"G\x00T / HTTP/1.1\r\n\r\n", 400, "request line"),
        (b"GET / HTTP/1.2\r\n\r\n", 505, "HTTP version"),
        (b"GET / HTTP/x.y\r\n\r\n", 400, "request line"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "HTTP version"),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "body",
        ),
    ],
)
def test_each_llhttp_refusal_has_a_status_and_a_message_without_the_bytes(data, status, field):
    error = _refusal(data)
    refusal = parser_problem(error)
    assert (refusal.status, refusal.field) == (status, field), str(error)
    assert "il_" not in refusal.message and "\\x00" not in refusal.message
    assert str(error) not in refusal.message


def test_a_failing_callback_is_a_plain_400():
    error = httptools.HttpParserCallbackError("`on_header_field` callback error")
    assert (parser_problem(error).status, parser_problem(error).field) == (400, "request")
