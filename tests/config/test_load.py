from __future__ import annotations

import textwrap
from collections.abc import Mapping

import pytest

from interlink.config import (
    AUTH_TYPES,
    STARTER_CONFIG,
    BearerAuthConfig,
    InterlinkConfig,
    load_config,
    parse_config,
)
from interlink.errors import ConfigError, UnknownTypeError

SECRET = "s3cr3t-value-never-shown"


def parse(text: str, env: Mapping[str, str] | None = None) -> InterlinkConfig:
    return parse_config(textwrap.dedent(text), file="interlink.yaml", env=env or {})


def problems(text: str, env: Mapping[str, str] | None = None) -> list[str]:
    """Return every error line for a config that must fail."""
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    error = info.value
    lines = [str(e) for e in vars(error)["errors"]]
    assert lines[0] == str(error)
    for line in lines:
        assert "\n" not in line
        assert "pydantic" not in line
        assert "Input should" not in line
    return lines


def only(text: str, env: Mapping[str, str] | None = None) -> str:
    lines = problems(text, env)
    assert len(lines) == 1, lines
    return lines[0]


# --- valid files ---------------------------------------------------------------------


def test_empty_file_is_a_config_with_defaults():
    for text in ("", "# only a comment\n", "---\n"):
        config = parse(text)
        assert config.connections == {}
        assert config.database.url == "sqlite:///.interlink/interlink.db"


def test_full_connection():
    config = parse(
        """
        database: postgresql://app:${DB_PASSWORD}@db/interlink
        connections:
          shop:
            base_url: ${SHOP_URL:-https://shop.example.com}
            auth:
              type: api_key
              key: ${SHOP_KEY}
              in: query
              name: api_key
            timeout: 10s
            retry: {max_attempts: "${RETRIES:-3}", base: 250ms}
            rate_limit: {rate: 5, per: 1m}
        """,
        env={"DB_PASSWORD": "pw", "SHOP_KEY": "k123"},
    )
    assert config.database.backend == "postgresql"
    shop = config.connections["shop"]
    assert shop.base_url == "https://shop.example.com"
    assert shop.auth.type == "api_key"
    assert shop.auth.key.get_secret_value() == "k123"
    assert shop.auth.location == "query"
    assert shop.timeout.read == 10.0
    assert shop.retry.max_attempts == 3
    assert shop.retry.base == 0.25
    assert shop.rate_limit is not None and shop.rate_limit.per == 60.0


def test_merge_keys_are_allowed():
    config = parse(
        """
        connections:
          a: &common
            base_url: https://a.example.com
            retry: {max_attempts: 2}
          b:
            <<: *common
            base_url: https://b.example.com
        """
    )
    assert config.connections["b"].base_url == "https://b.example.com"
    assert config.connections["b"].retry.max_attempts == 2


def test_load_config_reads_a_file_and_the_process_environment(tmp_path, monkeypatch):
    path = tmp_path / "interlink.yaml"
    path.write_text(
        "connections:\n  s:\n    base_url: https://x\n"
        "    auth: {type: bearer, token: '${TOKEN}'}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("TOKEN", "abc")
    config = load_config(path)
    assert isinstance(config, InterlinkConfig)
    auth = config.connections["s"].auth
    assert isinstance(auth, BearerAuthConfig)
    assert auth.token.get_secret_value() == "abc"
    # An explicit env replaces os.environ entirely.
    with pytest.raises(ConfigError, match="TOKEN is not set"):
        load_config(str(path), env={})


def test_starter_config_is_valid_with_and_without_its_variables():
    config = parse_config(STARTER_CONFIG, file="interlink.yaml", env={})
    assert list(config.connections) == ["shop"]
    env = {"SHOP_URL": "https://shop.test", "SHOP_TOKEN": "t", "INTERLINK_DATABASE_URL": ""}
    config = parse_config(STARTER_CONFIG, file="interlink.yaml", env=env)
    assert config.connections["shop"].base_url == "https://shop.test"


def test_starter_config_shows_every_auth_type():
    for auth_type in AUTH_TYPES:
        assert f"type: {auth_type}\n" in STARTER_CONFIG
    for key in ("retry:", "rate_limit:", "timeout:"):
        assert f"# {key}" in STARTER_CONFIG


# --- pydantic errors, one line each ------------------------------------------------------


def test_bad_auth_type_exact_message():
    text = """\
    database: sqlite:///x.db

    connections:
      shop:
        base_url: https://shop.example.com
        auth:
          type: oath2
    """
    with pytest.raises(UnknownTypeError) as info:
        parse(text)
    assert str(info.value) == (
        "interlink.yaml:7: connections.shop.auth.type: expected one of none, api_key, bearer, "
        "basic, oauth2_client_credentials, oauth2; got 'oath2'; did you mean 'oauth2'?"
    )
    assert info.value.known == AUTH_TYPES
    assert info.value.got == "oath2"
    assert info.value.line == 7
    assert info.value.key == "connections.shop.auth.type"


def test_missing_auth_type():
    line = only(
        """\
        connections:
          shop:
            base_url: https://x
            auth:
              token: abc
        """
    )
    assert line == (
        "interlink.yaml:4: connections.shop.auth: missing required key 'type' "
        "(one of none, api_key, bearer, basic, oauth2_client_credentials, oauth2)"
    )


def test_missing_key_is_reported_at_its_parent_without_union_tag():
    line = only(
        """\
        connections:
          shop:
            base_url: https://x
            auth:
              type: bearer
        """
    )
    assert line == "interlink.yaml:4: connections.shop.auth: missing required key 'token'"


def test_missing_base_url():
    assert only("connections:\n  shop: {}\n") == (
        "interlink.yaml:2: connections.shop: missing required key 'base_url'"
    )


def test_unknown_top_level_key_suggests_the_right_one():
    assert only("connectoins: {}\n") == (
        "interlink.yaml:1: unknown key 'connectoins'; did you mean 'connections'?"
    )


def test_unknown_nested_key_suggests_and_points_at_its_line():
    line = only(
        """\
        connections:
          shop:
            base_url: https://x
            retyr: {max_attempts: 3}
        """
    )
    assert line == "interlink.yaml:4: connections.shop: unknown key 'retyr'; did you mean 'retry'?"


def test_unknown_key_inside_auth_suggests_among_that_auth_types_fields():
    line = only(
        """\
        connections:
          shop:
            base_url: https://x
            auth: {type: basic, username: u, password: p, pasword: q}
        """
    )
    assert line.endswith("connections.shop.auth: unknown key 'pasword'; did you mean 'password'?")


def test_unknown_key_with_nothing_close_lists_the_known_keys():
    line = only("connections:\n  s:\n    base_url: https://x\n    rate_limit: {rate: 1, zzz: 2}\n")
    assert line == (
        "interlink.yaml:4: connections.s.rate_limit: unknown key 'zzz' "
        "(expected one of burst, per, rate, warn_below)"
    )


def test_literal_uses_yaml_alias_name():
    line = only(
        """\
        connections:
          shop:
            base_url: https://x
            auth:
              type: api_key
              key: k
              in: body
        """
    )
    assert line == (
        "interlink.yaml:7: connections.shop.auth.in: expected one of header, query; got 'body'"
    )


def test_transport_literal():
    assert only("connections:\n  s:\n    base_url: https://x\n    transport: curl\n") == (
        "interlink.yaml:4: connections.s.transport: expected one of auto, aiohttp, threads, "
        "httpx; got 'curl'"
    )


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("max_connections: many", "expected a whole number; got 'many'"),
        ("max_connections: 1.5", "expected a whole number; got 1.5"),
        ("max_connections: 0", "expected a number at least 1; got 0"),
        ("max_connections: 5000", "expected a number at most 1000; got 5000"),
        ("rate_limit: {rate: fast}", "expected a number; got 'fast'"),
        ("rate_limit: {rate: 0}", "expected a number greater than 0; got 0"),
        ("rate_limit: {rate: 1, burst: 0}", "expected a number at least 1; got 0"),
        ("retry: {max_attempts: 0}", "expected a number at least 1; got 0"),
        ("rate_limit: 5", "expected a mapping; got 5"),
        ("retry: [1, 2]", "expected a mapping; got a list"),
        ("headers: [a, b]", "expected a mapping; got a list"),
    ],
)
def test_scalar_errors(setting, expected):
    line = only(f"connections:\n  s:\n    base_url: https://x\n    {setting}\n")
    assert line.startswith("interlink.yaml:4: connections.s.")
    assert line.endswith(expected)


def test_bool_parsing():
    # No boolean field in the model yet; pydantic's wording is rewritten all the same.
    from pydantic import BaseModel, ValidationError

    from interlink.config._messages import errors_from_validation

    class Flags(BaseModel):
        on: bool

    with pytest.raises(ValidationError) as info:
        Flags.model_validate({"on": "maybe"})
    [error] = errors_from_validation(
        info.value, model=Flags, data={"on": "maybe"}, file="f.yaml", locate=lambda path: 3
    )
    assert str(error) == "f.yaml:3: on: expected true or false; got 'maybe'"


def test_validator_messages_are_used_as_written():
    lines = problems(
        """\
        database: mysql://localhost/db
        connections:
          shop:
            base_url: ftp://x
            timeout: soon
        """
    )
    assert lines == [
        "interlink.yaml:1: database: expected a sqlite:/// or postgresql:// URL; got 'mysql'",
        "interlink.yaml:4: connections.shop.base_url: expected an http:// or https:// URL; "
        "got 'ftp://x'",
        "interlink.yaml:5: connections.shop.timeout: expected a duration such as 30, 1.5, "
        "'500ms', '1m' or '1h'; got 'soon'",
    ]


def test_connection_name_error_points_at_the_name():
    line = only(
        "connections:\n  ok:\n    base_url: https://x\n  bad name:\n    base_url: https://x\n"
    )
    assert line == (
        "interlink.yaml:4: connections: connection names are letters, digits, '_' and '-'; "
        "got 'bad name'"
    )


def test_a_scalar_expanded_by_a_validator_is_reported_once_at_its_own_key():
    line = only("connections:\n  s:\n    base_url: https://x\n    timeout: -1\n")
    assert (
        line == "interlink.yaml:4: connections.s.timeout: expected a number greater than 0; got -1"
    )


def test_connections_must_be_a_mapping():
    assert only("connections:\n  - shop\n") == (
        "interlink.yaml:1: connections: expected a mapping; got a list"
    )


def test_non_text_keys():
    assert only("connections:\n  5:\n    base_url: https://x\n") == (
        "interlink.yaml:2: connections: keys must be text; got 5"
    )
    assert "quote the key" in only("on: 1\n")


def test_every_error_is_kept_in_file_order():
    lines = problems(
        """\
        connections:
          a:
            base_url: https://x
            retry: {max_attempts: x}
          b:
            base_url: nope
        connectoins: {}
        """
    )
    assert [line.split(":")[1] for line in lines] == ["4", "6", "7"]


# --- secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        "{type: bearer, token: [SECRET]}",
        "{type: api_key, key: {v: SECRET}}",
        "{type: bearer, tokne: SECRET}",
        "{type: basic, username: u, password: [SECRET]}",
        "{type: oauth2, token_url: 'https://t', client_id: c, refresh_token: [SECRET]}",
    ],
)
def test_secret_values_never_appear(auth):
    text = (
        f"connections:\n  s:\n    base_url: https://x\n    auth: {auth.replace('SECRET', SECRET)}\n"
    )
    for line in problems(text):
        assert SECRET not in line


def test_secret_scalar_of_the_wrong_type_says_got_a_value():
    line = only(
        "connections:\n  s:\n    base_url: https://x\n    auth: {type: bearer, token: 12345}\n"
    )
    assert line.endswith(
        "connections.s.auth.token: expected text (quote it in YAML if it looks "
        "like a number); got a value"
    )
    assert "12345" not in line


def test_secrets_from_the_environment_are_masked_anywhere():
    env = {"SHOP_TOKEN": SECRET}
    line = only("connections:\n  s:\n    base_url: 'ftp://x/${SHOP_TOKEN}'\n", env)
    assert SECRET not in line
    assert "ftp://x/***" in line


def test_passwords_in_urls_are_masked():
    env = {"DB_URL": "user:hunter2pass@db.example.com/x"}
    line = only("database: ${DB_URL}\n", env)
    assert "hunter2pass" not in line
    assert "user:***@db.example.com" in line


def test_exception_chain_does_not_carry_pydantic_dump():
    with pytest.raises(ConfigError) as info:
        parse("connections:\n  s:\n    base_url: https://x\n    auth: {type: bearer, token: [x]}\n")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# --- environment ---------------------------------------------------------------------


def test_missing_environment_variable_names_variable_key_and_line():
    text = """\
    # shop
    connections:
      shop:
        base_url: https://x


      # the token
        auth:
          type: bearer
          token: ${SHOP_TOKEN}
    """
    text = "\n".join(line for line in textwrap.dedent(text).splitlines() if "the token" not in line)
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="interlink.yaml", env={})
    assert str(info.value) == (
        "interlink.yaml:9: connections.shop.auth.token: environment variable SHOP_TOKEN is not "
        "set (use ${SHOP_TOKEN:-default} for a default)"
    )


def test_all_missing_variables_are_reported():
    lines = problems(
        "connections:\n  s:\n    base_url: ${URL}\n    auth: {type: bearer, token: '${TOK}'}\n"
    )
    assert [line.split(": environment variable ")[1].split()[0] for line in lines] == ["URL", "TOK"]


def test_environment_values_are_validated_like_literals():
    line = only(
        "connections:\n  s:\n    base_url: https://x\n    retry: {max_attempts: '${N}'}\n",
        {"N": "lots"},
    )
    assert (
        line
        == "interlink.yaml:4: connections.s.retry.max_attempts: expected a whole number; got 'lots'"
    )


# --- reading and YAML --------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: no such file (run 'interlink init' to create one)"
    assert vars(info.value)["errors"] == [info.value]


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_not_utf8(tmp_path):
    path = tmp_path / "interlink.yaml"
    path.write_bytes(b"connections:\n  s: \xff\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:2: not UTF-8 text")


def test_yaml_syntax_error_has_the_parsers_line():
    line = only("connections:\n  shop:\n    base_url: https://x\n   auth: none\n")
    assert line.startswith("interlink.yaml:4: invalid YAML: ")


def test_unclosed_flow_sequence():
    line = only("connections: [\n  a,\n  b\n")
    assert line.startswith("interlink.yaml:4: invalid YAML: expected ',' or ']'")
    assert "on line 1" in line


def test_unquoted_reference_in_flow_mapping_gets_a_hint():
    line = only("connections:\n  s: {base_url: https://x, auth: {type: bearer, token: ${T}}}\n")
    assert line.startswith("interlink.yaml:2: invalid YAML")
    assert line.endswith("quote values that use ${...} inside { } or [ ]")


def test_unknown_yaml_tag():
    assert only("connections: !Ref shop\n").startswith(
        "interlink.yaml:1: invalid YAML: could not determine a constructor for the tag '!Ref'"
    )


def test_top_level_must_be_a_mapping():
    assert only("- a\n- b\n") == (
        "interlink.yaml:1: expected a mapping of keys (connections, database, ...) at the top "
        "level; got a list"
    )
    assert only("just text\n").endswith("got 'just text'")


def test_several_documents_are_refused():
    assert "invalid YAML" in only("a: 1\n---\nb: 2\n")


def test_duplicate_keys_are_errors():
    lines = problems(
        """\
        connections:
          shop:
            base_url: https://x
          shop:
            base_url: https://y
        database: sqlite:///a.db
        database: sqlite:///b.db
        """
    )
    assert lines == [
        "interlink.yaml:4: connections: duplicate key 'shop' (first defined on line 2)",
        "interlink.yaml:7: duplicate key 'database' (first defined on line 6)",
    ]


def test_recursive_alias():
    assert "refers to its own parent" in only("connections: &a\n  x: *a\n")


def test_alias_bomb_is_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    assert "too large" in only("\n".join(lines) + "\n")
