"""The pure pieces of the edges: client addresses behind proxies, masking the access log,
and what each HTTP parser refusal is answered with."""

from __future__ import annotations

import logging

import h11
import pytest

from interlink.server import SecretQueryFilter, install_access_log_filter, mask_target
from interlink.server._protocol import protocol_problem
from interlink.server._proxies import TrustedProxies

PROXIES = TrustedProxies(["10.0.0.0/8", "127.0.0.1", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("192.0.2.1", ["203.0.113.9"], "192.0.2.1"),  # an untrusted peer: header ignored
        ("10.0.0.7", ["203.0.113.9"], "203.0.113.9"),
        ("10.0.0.7", ["198.51.100.1, 203.0.113.9"], "203.0.113.9"),  # left part is forged
        ("10.0.0.7", ["198.51.100.1", "203.0.113.9, 10.1.1.1"], "203.0.113.9"),  # two headers
        ("10.0.0.7", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # all trusted: the left-most
        ("10.0.0.7", ["garbage, 203.0.113.9"], "203.0.113.9"),
        ("10.0.0.7", ["203.0.113.9, garbage"], "10.0.0.7"),  # the proxy's own entry is bad
        ("10.0.0.7", ["203.0.113.9:4711"], "203.0.113.9"),
        ("10.0.0.7", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("fd00::5", ["2001:db8::7"], "2001:db8::7"),
        ("::ffff:10.0.0.7", ["203.0.113.9"], "203.0.113.9"),  # IPv4-mapped peer
        ("10.0.0.7", [" , "], "10.0.0.7"),
        ("localhost", ["203.0.113.9"], "localhost"),
    ],
)
def test_the_client_is_the_right_most_untrusted_address(peer, forwarded, client):
    assert PROXIES.client(peer, forwarded) == client


def test_no_trusted_proxies_means_the_peer_always():
    assert not TrustedProxies([])
    assert TrustedProxies([]).client("10.0.0.7", ["203.0.113.9"]) == "10.0.0.7"


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/api/v1/jobs?api_key=s3cr3t&limit=5", "/api/v1/jobs?api_key=***&limit=5"),
        (
            "/x?API_KEY=a&Access_Token=b&client_secret=c",
            "/x?API_KEY=***&Access_Token=***&client_secret=***",
        ),
        ("/x?api%5Fkey=a&p%61ssword=b", "/x?api%5Fkey=***&p%61ssword=***"),
        (
            "/x?sig=a&signature=b&key=c&token=d&secret=e",
            "/x?sig=***&signature=***&key=***&token=***&secret=***",
        ),
        ("/x?keyword=a&monkey=b&author=c&limit=d", "/x?keyword=a&monkey=b&author=c&limit=d"),
        ("/x?token=", "/x?token="),
        ("/api/v1/jobs/il_abcdefgh_ABCdef0123", "/api/v1/jobs/***"),
        ("/x?q=il_abcdefgh_ABCdef0123", "/x?q=***"),
    ],
)
def test_secret_query_values_and_keys_are_masked(target, logged):
    assert mask_target(target) == logged


def test_the_filter_masks_uvicorns_access_record_and_is_installed_once():
    logger = logging.getLogger("tests.access")
    install_access_log_filter(logger)
    install_access_log_filter(logger)
    assert sum(isinstance(f, SecretQueryFilter) for f in logger.filters) == 1
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/v1/jobs?token=abc", "1.1", 401),
        None,
    )
    assert logger.filters[0].filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /api/v1/jobs?token=*** HTTP/1.1" 401'


def _refusal(data: bytes) -> h11.RemoteProtocolError:
    conn = h11.Connection(h11.SERVER, 1024)
    conn.receive_data(data)
    with pytest.raises(h11.RemoteProtocolError) as caught:
        while conn.next_event() is not h11.NEED_DATA:
            pass
    return caught.value


@pytest.mark.parametrize(
    ("data", "status", "field"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Transfer-Encoding"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Key: il_\x00secret\r\n\r\n", 400, "headers"),
        (b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request line"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "Host"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 2000, 431, "headers"),
    ],
)
def test_each_parser_refusal_has_a_status_and_a_message_without_the_bytes(data, status, field):
    error = _refusal(data)
    found_status, found_field, message = protocol_problem(error, 1024)
    assert (found_status, found_field) == (status, field), str(error)
    assert "il_" not in message and "\\x00" not in message
    assert protocol_problem(None, 1024)[0] == 400


@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/jobs?access_token=#s3cr3t-value-1234&x=1",
        "/api/v1/jobs?x=il%5Fabcdefgh_SECRETKEYVALUE1234",
        "/api/v1/jobs?access_key=AKIA-SECRET-1234&pass=hunter22-SECRET",
    ],
)
def test_the_access_log_masks_what_the_review_found(target) -> None:
    """Review finding: a value starting with `#`, a percent-encoded key and the names
    access_key and pass came through unmasked."""
    from interlink.server._accesslog import mask_target

    masked = mask_target(target)
    assert "SECRET" not in masked and "s3cr3t" not in masked, masked
    assert "***" in masked
