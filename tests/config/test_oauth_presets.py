"""`auth.preset`: a provider's endpoints filled in, the file's own keys winning, and the
authorize URL each preset makes."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from interlink.config import OAUTH_PRESETS, parse_config
from interlink.errors import ConfigError
from interlink.oauth import ConnectFlows
from interlink.store import Store


def _config(auth: str, tmp_path: Path | None = None) -> str:
    database = f"sqlite:///{tmp_path / 'i.db'}" if tmp_path else "sqlite:///:memory:"
    return f"""
database: "{database}"
connections:
  crm:
    base_url: https://api.example.com
    auth:
      type: oauth2
      client_id: my-client
      client_secret: s3cret
      redirect_uri: https://integrations.example.com/connect/crm/callback
{auth}
"""


@pytest.mark.parametrize("preset", sorted(OAUTH_PRESETS))
def test_every_preset_fills_in_a_usable_connection(preset: str) -> None:
    config = parse_config(
        _config(f"      preset: {preset}\n      scope: read"), file="interlink.yaml"
    )
    auth = config.connections["crm"].auth
    assert auth.type == "oauth2"
    assert auth.token_url.startswith("https://") and auth.authorize_url
    assert auth.authorize_url.startswith("https://")
    assert auth.auth_method == "client_secret_post"


def test_the_files_keys_win_over_the_preset() -> None:
    config = parse_config(
        _config("      preset: stripe\n      scope: read_write\n      account_key: acct"),
        file="interlink.yaml",
    )
    auth = config.connections["crm"].auth
    assert auth.type == "oauth2"
    assert (auth.scope, auth.account_key) == ("read_write", "acct")
    assert auth.token_url == "https://connect.stripe.com/oauth/token"
    assert auth.revocation_url is None  # Stripe deauthorizes its own way


def test_an_unknown_preset_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(_config("      preset: hubspot"), file="interlink.yaml")
    message = str(raised.value)
    assert "connections.crm.auth" in message and "preset" in message
    assert "'stripe'" in message and "\n" not in message.strip()


def test_a_plain_http_redirect_uri_off_loopback_is_refused() -> None:
    text = _config("      preset: github").replace(
        "https://integrations.example.com", "http://integrations.example.com"
    )
    with pytest.raises(ConfigError, match="must be https"):
        parse_config(text, file="interlink.yaml")


def test_googles_authorize_url_asks_for_offline_access(tmp_path: Path) -> None:
    config = parse_config(
        _config("      preset: google\n      scope: openid email", tmp_path), file="x.yaml"
    )
    store = Store.open(config.database)
    try:
        _, url = ConnectFlows(config, store).begin("crm", "s" * 43)
    finally:
        store.close()
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://accounts.google.com/o/oauth2/v2/auth"
    )
    assert query["access_type"] == "offline" and query["prompt"] == "consent"
    assert query["scope"] == "openid email" and query["client_id"] == "my-client"
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == "https://integrations.example.com/connect/crm/callback"
    assert "s3cret" not in url


def test_google_needs_a_scope() -> None:
    with pytest.raises(ConfigError, match="connections.crm.auth: scope: Google refuses"):
        parse_config(_config("      preset: google"), file="interlink.yaml")


@pytest.mark.parametrize("key", ["token_url", "revocation_url"])
def test_a_plain_http_token_or_revocation_endpoint_off_loopback_is_refused(key: str) -> None:
    """The client secret and the tokens would cross the network in clear."""
    urls = {"token_url": "https://id.example.com/token", key: "URL"}
    lines = "".join(f"      {name}: {value}\n" for name, value in urls.items())
    text = _config(lines.rstrip("\n"))
    with pytest.raises(ConfigError) as raised:
        parse_config(text.replace("URL", "http://id.example.com/oauth/x"), file="i.yaml")
    message = str(raised.value)
    assert f"connections.crm.auth.{key}" in message and "must be https://" in message
    for loopback in ("http://127.0.0.1:8080/oauth/x", "http://localhost/oauth/x", "/oauth/x"):
        parse_config(text.replace("URL", loopback), file="i.yaml")


def test_a_plain_http_client_credentials_token_url_off_loopback_is_refused() -> None:
    text = """
connections:
  api:
    base_url: https://api.example.com
    auth:
      type: oauth2_client_credentials
      token_url: http://id.example.com/token
      client_id: c
      client_secret: s
"""
    with pytest.raises(ConfigError, match="connections.api.auth.token_url.*must be https://"):
        parse_config(text, file="interlink.yaml")
