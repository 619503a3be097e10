"""`load_config_source`: a later ConfigError about a key gets the file and line of that key."""

from __future__ import annotations

from interlink.config import load_config_source
from interlink.errors import ConfigError

TEXT = """\
connections:
  shop:
    base_url: "http://127.0.0.1:9"
    auth: {type: bearer, token: "${SHOP_TOKEN}"}
resources:
  shop:
    customers: {path: /customers}
pipelines:
  copy:
    source: shop.customers
    destination: "sql:customers"
    fields:
      full.name: "{first} {last}"
    filter: "a +"
"""


def load(tmp_path):
    path = tmp_path / "interlink.yaml"
    path.write_text(TEXT)
    return path, load_config_source(path, env={"SHOP_TOKEN": "tok-123456"})


def test_a_key_gets_its_line_or_its_nearest_ancestors(tmp_path):
    path, (_, source) = load(tmp_path)
    located = source.locate(ConfigError("bad", key="pipelines.copy.filter"))
    assert str(located) == f"{path}:14: pipelines.copy.filter: bad"
    # A field name with a dot is still found whole.
    assert source.line_of("pipelines.copy.fields.full.name") == 13
    # Deeper than the file goes: the nearest ancestor that is written.
    assert source.line_of("pipelines.copy.fields.nothing.here") == 12
    assert source.line_of("database") is None


def test_errors_not_about_the_file_are_left_alone(tmp_path):
    path, (_, source) = load(tmp_path)
    option = ConfigError("cannot listen", key="--port")
    assert source.locate(option) is option
    elsewhere = ConfigError("bad", file="other.yaml", line=3, key="pipelines")
    assert source.locate(elsewhere) is elsewhere


def test_every_problem_is_located_in_file_order_and_secrets_are_masked(tmp_path):
    path, (_, source) = load(tmp_path)
    first = ConfigError("no", key="pipelines.copy.filter")
    second = ConfigError("token tok-123456 refused", key="connections.shop.auth")
    first.errors = [first, second]
    located = source.locate(first)
    assert [str(e) for e in vars(located)["errors"]] == [
        f"{path}:4: connections.shop.auth: token *** refused",
        f"{path}:14: pipelines.copy.filter: no",
    ]
