"""Errors name the key of interlink.yaml to fix: a connection nobody answers at names its
`base_url`, a 404 on a resource's first page names its `path`; aiohttp's noise
(`ssl:default`, `[Connect call failed ('127.0.0.1', 9)]`) is gone."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.http._status import transport_message
from interlink.sandbox import SandboxServer, create_shop_app

CONFIG = """\
database: sqlite:///{db}
connections:
  api:
    base_url: {url}
    retry: {{max_attempts: 1}}
resources:
  api:
    customers:
      path: {path}
      records: data
"""


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _read(tmp_path: Path, url: str, path: str = "/customers") -> tuple[int, str]:
    config = tmp_path / "interlink.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "state.db", url=url, path=path))
    result = CliRunner().invoke(app, ["read", "api.customers", "-c", str(config)])
    return result.exit_code, result.stderr


def test_a_refused_connection_names_the_base_url_key(tmp_path: Path) -> None:
    port = _closed_port()
    code, err = _read(tmp_path, f"http://127.0.0.1:{port}/v1")
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line == (
        f"GET http://127.0.0.1:{port}/v1/customers (1 attempt): ConnectError: cannot connect "
        f"to 127.0.0.1:{port}: connection refused; check connections.api.base_url "
        f"(http://127.0.0.1:{port}/v1)"
    )
    assert "ssl:" not in err and "Connect call failed" not in err


def test_a_404_on_the_first_page_names_the_path_key(tmp_path: Path) -> None:
    with SandboxServer(create_shop_app(records=5)) as shop:
        url = shop.url
        code, err = _read(tmp_path, url, path="/customerz")
    assert code == 1
    assert "-> 404" in err
    assert f"check resources.api.customers.path ('/customerz' under {url})" in err


def test_transport_messages_lose_the_library_noise() -> None:
    assert (
        transport_message(
            "Cannot connect to host no-such.invalid:443 ssl:<ssl.SSLContext object at 0x7f>"
            " [Name or service not known]"
        )
        == "cannot connect to no-such.invalid:443: no such host (DNS lookup failed)"
    )
    assert transport_message("Server disconnected") == "Server disconnected"
    # httpx's ConnectError (the threads transport) carries the reason alone.
    assert (
        transport_message("[Errno 111] Connection refused", connecting_to="127.0.0.1:9")
        == "cannot connect to 127.0.0.1:9: connection refused"
    )
    assert (
        transport_message("[Errno -2] Name or service not known", connecting_to="no-such:443")
        == "cannot connect to no-such:443: no such host (DNS lookup failed)"
    )
    assert (
        transport_message(
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed "
            "certificate (_ssl.c:1006)",
            connecting_to="127.0.0.1:8443",
        )
        == "cannot connect to 127.0.0.1:8443: its TLS certificate was refused"
    )
    assert transport_message("timed out", connecting_to="h:1") == "cannot connect to h:1: timed out"
    assert (
        transport_message(
            "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version (_ssl.c:1006)",
            connecting_to="h:443",
        )
        == "cannot connect to h:443: tlsv1 alert protocol version"
    )


def test_https_to_a_plain_http_port_says_so_without_openssl_noise(tmp_path: Path) -> None:
    with SandboxServer(create_shop_app(records=5)) as shop:
        url = shop.url.replace("http://", "https://")
        code, err = _read(tmp_path, url)
    assert code == 1
    assert (
        f"(1 attempt): ConnectError: cannot connect to {url.removeprefix('https://')}: it does "
        "not speak TLS on that port (is the URL http://, not https://?); check "
        f"connections.api.base_url ({url})"
    ) in err, err
    assert "_ssl.c" not in err and "WRONG_VERSION_NUMBER" not in err
