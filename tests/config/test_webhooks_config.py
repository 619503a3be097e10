"""`webhooks:` in interlink.yaml: the models, their defaults, and one-line errors that name
the file, the line and the key, and never a secret."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import pytest

from interlink.config import (
    DEFAULT_WEBHOOK_TOLERANCE,
    WEBHOOK_SCHEMES,
    GitHubWebhookConfig,
    HmacWebhookConfig,
    InterlinkConfig,
    StandardWebhookConfig,
    StripeWebhookConfig,
    WebhookFieldConfig,
    load_config,
    parse_config,
)
from interlink.errors import ConfigError, UnknownTypeError

SECRET = "s3cr3t-value-never-shown"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENV = {"HOOK_SECRET": SECRET, "STD_SECRET": WHSEC, "PLAIN": "not-base64-at-all!!" + SECRET}


def parse(text: str, env: Mapping[str, str] | None = None) -> InterlinkConfig:
    return parse_config(
        textwrap.dedent(text), file="interlink.yaml", env=ENV if env is None else env
    )


def only(text: str, env: Mapping[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    lines = [str(e) for e in vars(info.value)["errors"]]
    assert len(lines) == 1, lines
    line = lines[0]
    assert "\n" not in line and "pydantic" not in line and "Input should" not in line
    assert SECRET not in line and "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in line
    assert SECRET not in repr(info.value)
    return line


def test_no_webhooks_is_an_empty_mapping():
    assert parse("").webhooks == {}


def test_every_scheme_with_defaults():
    config = parse(
        """
        webhooks:
          std: {scheme: standard, secret: "${STD_SECRET}"}
          billing: {scheme: stripe, secret: "${HOOK_SECRET}"}
          gh: {scheme: github, secret: "${HOOK_SECRET}"}
          shop: {scheme: shopify, secret: "${HOOK_SECRET}"}
          chat: {scheme: slack, secret: "${HOOK_SECRET}"}
          odoo: {scheme: hmac, secret: "${HOOK_SECRET}"}
        """
    )
    assert [c.scheme for c in config.webhooks.values()] == WEBHOOK_SCHEMES
    for item in config.webhooks.values():
        assert item.tolerance == DEFAULT_WEBHOOK_TOLERANCE == 300
        assert item.enabled is True
        assert item.max_body == 1024 * 1024
        assert item.event_type is None
        assert len(item.signing_keys) == 1
        assert SECRET not in repr(item)
    std = config.webhooks["std"]
    assert isinstance(std, StandardWebhookConfig)
    assert len(std.signing_keys[0]) == 24  # base64-decoded, whsec_ dropped
    assert isinstance(config.webhooks["billing"], StripeWebhookConfig)
    assert config.webhooks["billing"].signing_keys == (SECRET.encode(),)
    odoo = config.webhooks["odoo"]
    assert isinstance(odoo, HmacWebhookConfig)
    assert (odoo.header, odoo.algorithm, odoo.encoding, odoo.prefix) == (
        "X-Signature",
        "sha256",
        "hex",
        "",
    )
    assert odoo.template == ("", "body", "")
    assert odoo.api_key is None and odoo.api_key_header == "X-API-Key"


def test_the_guide_controller_and_all_options():
    config = parse(
        """
        webhooks:
          odoo:
            scheme: hmac
            secrets: ["${HOOK_SECRET}", older-secret]
            header: X-Hub-Signature
            algorithm: sha512
            encoding: base64
            prefix: "sha512="
            timestamp_header: X-Timestamp
            delivery_id: {header: X-Delivery}
            signed_content: "{timestamp}:{id}:{body}"
            api_key: "${HOOK_SECRET}"
            api_key_header: X-Odoo-Key
            event_type: {header: X-Event-Type}
            tolerance: 5m
            max_body: 64KiB
            enabled: false
        """
    )
    odoo = config.webhooks["odoo"]
    assert isinstance(odoo, HmacWebhookConfig)
    assert odoo.tolerance == 300.0 and odoo.max_body == 65536 and odoo.enabled is False
    assert odoo.signing_keys == (SECRET.encode(), b"older-secret")
    assert odoo.template == ("", "timestamp", ":", "id", ":", "body", "")
    assert odoo.event_type == WebhookFieldConfig(header="X-Event-Type")
    assert odoo.delivery_id == WebhookFieldConfig(header="X-Delivery")
    assert SECRET not in repr(config)


def test_default_template_signs_the_timestamp_when_there_is_one():
    config = parse(
        """
        webhooks:
          a: {scheme: hmac, secret: x, timestamp_header: X-Ts}
        """
    )
    a = config.webhooks["a"]
    assert isinstance(a, HmacWebhookConfig)
    assert a.template == ("", "timestamp", ".", "body", "")


def test_load_config_points_at_the_file_and_line(tmp_path):
    path = tmp_path / "interlink.yaml"
    path.write_text("webhooks:\n  gh:\n    scheme: github\n    secret: x\n    tolerance: soon\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == (
        f"{path}:5: webhooks.gh.tolerance: expected a duration such as 30, 1.5, '500ms', "
        "'1m' or '1h'; got 'soon'"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """
            webhooks:
              a:
                secret: x
            """,
            "interlink.yaml:3: webhooks.a: missing required key 'scheme' "
            "(one of standard, stripe, github, shopify, slack, hmac)",
        ),
        (
            """
            webhooks:
              a:
                scheme: github
            """,
            "interlink.yaml:3: webhooks.a: missing required key 'secret' "
            "(or 'secrets', a list, to rotate)",
        ),
        (
            """
            webhooks:
              a:
                scheme: stripe
                secret: "${HOOK_SECRET}"
                secrets: ["${HOOK_SECRET}"]
            """,
            "interlink.yaml:3: webhooks.a: give 'secret' or 'secrets', not both",
        ),
        (
            """
            webhooks:
              a:
                scheme: standard
                secret: "${PLAIN}"
            """,
            "interlink.yaml:5: webhooks.a.secret: expected whsec_ followed by base64 text "
            "(the secret the sender shows); got a value",
        ),
        (
            """
            webhooks:
              a:
                scheme: standard
                secrets:
                  - "${STD_SECRET}"
                  - "${PLAIN}"
            """,
            "interlink.yaml:5: webhooks.a.secrets: item 2: expected whsec_ followed by base64 "
            "text (the secret the sender shows); got a value",
        ),
        (
            """
            webhooks:
              a:
                scheme: stripe
                secrets: [12345678901234]
            """,
            "interlink.yaml:5: webhooks.a.secrets[0]: expected text (quote the secret in YAML)",
        ),
        (
            """
            webhooks:
              a:
                scheme: stripe
                secret: ""
            """,
            "interlink.yaml:5: webhooks.a.secret: expected a non-empty secret; got a value",
        ),
        (
            """
            webhooks:
              a:
                scheme: stripe
                secrets: []
            """,
            "interlink.yaml:5: webhooks.a.secrets: expected at least one secret; got a value",
        ),
        (
            """
            webhooks:
              a:
                scheme: github
                secret: x
                tolerance: 0
            """,
            "interlink.yaml:6: webhooks.a.tolerance: expected a number greater than 0; got 0",
        ),
        (
            """
            webhooks:
              a:
                scheme: hmac
                secret: x
                algorithm: md5
            """,
            "interlink.yaml:6: webhooks.a.algorithm: expected one of sha1, sha256, sha512; "
            "got 'md5'",
        ),
        (
            """
            webhooks:
              a:
                scheme: hmac
                secret: x
                encoding: base32
            """,
            "interlink.yaml:6: webhooks.a.encoding: expected one of hex, base64; got 'base32'",
        ),
        (
            """
            webhooks:
              a:
                scheme: hmac
                secret: x
                header: "X Signature"
            """,
            "interlink.yaml:6: webhooks.a.header: expected a header name such as X-Event-Type; "
            "got 'X Signature'",
        ),
        (
            """
            webhooks:
              a:
                scheme: hmac
                secret: x
                signed_content: "{ts}.{body}"
            """,
            "interlink.yaml:6: webhooks.a.signed_content: expected only {body}, {timestamp} "
            "and {id} in the template; got {ts}",
        ),
        (
            """
            webhooks:
              a:
                scheme: hmac
                secret: x
                timestamp_header: X-Ts
                signed_content: "{body}"
            """,
            "interlink.yaml:7: webhooks.a.signed_content: expected {timestamp} in the template "
            "when timestamp_header is set (an unsigned timestamp does not stop replays); "
            "got '{body}'",
        ),
        (
            """
            webhooks:
              a:
                scheme: hmac
                secret: x
                signed_content: "{timestamp}.{body}"
            """,
            "interlink.yaml:6: webhooks.a.signed_content: {timestamp} needs a timestamp_header",
        ),
        (
            """
            webhooks:
              a:
                scheme: hmac
                secret: x
                delivery_id: {path: id}
                signed_content: "{id}.{body}"
            """,
            "interlink.yaml:7: webhooks.a.signed_content: {id} needs delivery_id: {header: ...}",
        ),
        (
            """
            webhooks:
              a:
                scheme: hmac
                secret: x
                signed_content: "{body}{body}"
            """,
            "interlink.yaml:6: webhooks.a.signed_content: expected {body} once and balanced "
            "{...}; got '{body}{body}'",
        ),
        (
            """
            webhooks:
              a:
                scheme: hmac
                secret: x
                event_type: {header: X-Type, path: type}
            """,
            "interlink.yaml:6: webhooks.a.event_type: expected exactly one of 'header' or 'path'",
        ),
        (
            """
            webhooks:
              a:
                scheme: hmac
                secret: x
                event_type: {path: "a..b"}
            """,
            "interlink.yaml:6: webhooks.a.event_type.path: expected a dotted path such as "
            "data.object.id; got 'a..b'",
        ),
        (
            """
            webhooks:
              a:
                scheme: github
                secret: x
                delivery_id: {header: X-Id}
            """,
            "interlink.yaml:6: webhooks.a: unknown key 'delivery_id' (expected one of actions, "
            "connection, enabled, event_type, max_attempts, max_body, repeat_window, scheme, "
            "secret, secrets, tolerance)",
        ),
        (
            """
            webhooks:
              a:
                scheme: github
                secret: x
                max_body: 1GB
            """,
            "interlink.yaml:6: webhooks.a.max_body: expected a size such as 65536, '64KiB' or "
            "'1MiB'; got '1GB'",
        ),
        (
            """
            webhooks:
              a:
                scheme: github
                secret: x
                max_body: 2147483648
            """,
            "interlink.yaml:6: webhooks.a.max_body: expected a number at most 1073741824; got "
            "2147483648",
        ),
        (
            """
            webhooks:
              a:
                scheme: github
                secret: x
                actions: {push: {run: x, handler: "a:b"}}
            """,
            "interlink.yaml:6: webhooks.a.actions.push: expected exactly one of 'run', "
            "'handler' or 'ignore'; got run, handler",
        ),
        (
            """
            webhooks:
              a:
                scheme: github
                secret: x
                actions: {push: skip}
            """,
            "interlink.yaml:6: webhooks.a.actions.push: expected 'ignore' or a mapping with "
            "run, record or handler (such as {run: customers})",
        ),
        (
            """
            webhooks:
              a:
                scheme: github
                secret: x
                actions: {push: {record: data.id}}
            """,
            "interlink.yaml:6: webhooks.a.actions.push: expected exactly one of 'run', "
            "'handler' or 'ignore'",
        ),
        (
            """
            webhooks:
              a:
                scheme: github
                secret: x
                actions: {push: {handler: not-a-path}}
            """,
            "interlink.yaml:6: webhooks.a.actions.push.handler: expected module:function such "
            "as myapp.hooks:on_order; got 'not-a-path'",
        ),
        (
            """
            webhooks:
              a:
                scheme: github
                secret: x
                actions: {"**": ignore}
            """,
            "interlink.yaml:6: webhooks.a.actions: event types are names (customer.updated), "
            "prefixes ending in '*' (customer.*) or '*'; got '**'",
        ),
        (
            """
            webhooks:
              deliveries:
                scheme: github
                secret: x
            """,
            "interlink.yaml:2: webhooks: 'deliveries' is not a webhook source name: "
            "/api/v1/webhooks/deliveries is the API's own route",
        ),
        (
            """
            webhooks:
              "bad name":
                scheme: github
                secret: x
            """,
            "interlink.yaml:3: webhooks: webhook source names are letters, digits, '_' and '-', "
            "at most 100 (they are part of the URL); got 'bad name'",
        ),
        (
            """
            webhooks: [github]
            """,
            "interlink.yaml:2: webhooks: expected a mapping; got a list",
        ),
        (
            """
            webhooks:
              a:
                scheme: hmac
                secret: x
                api_key: 123456789
            """,
            "interlink.yaml:6: webhooks.a.api_key: expected text (quote the secret in YAML); "
            "got a value",
        ),
    ],
)
def test_errors_are_one_line_with_file_line_and_key(text, expected):
    assert only(text) == expected


def test_unknown_scheme_lists_the_known_ones():
    with pytest.raises(UnknownTypeError) as info:
        parse("webhooks:\n  a:\n    scheme: stripee\n    secret: x\n")
    assert str(info.value) == (
        "interlink.yaml:3: webhooks.a.scheme: expected one of standard, stripe, github, "
        "shopify, slack, hmac; got 'stripee'; did you mean 'stripe'?"
    )
    assert info.value.known == WEBHOOK_SCHEMES


def test_secret_values_from_the_environment_never_appear():
    """A bad secret taken from ${VAR} is masked wherever pydantic would have echoed it."""
    line = only("webhooks:\n  a:\n    scheme: standard\n    secret: ${PLAIN}\n")
    assert "not-base64" not in line


def test_several_problems_are_all_reported_in_file_order():
    with pytest.raises(ConfigError) as info:
        parse(
            """
            webhooks:
              a: {scheme: github}
              b: {scheme: hmac, secret: x, algorithm: md4}
            """
        )
    lines = [str(e) for e in vars(info.value)["errors"]]
    assert [line.split(": ")[0] for line in lines] == ["interlink.yaml:3", "interlink.yaml:4"]


def test_models_are_frozen():
    config = parse("webhooks:\n  gh: {scheme: github, secret: x}\n")
    gh = config.webhooks["gh"]
    assert isinstance(gh, GitHubWebhookConfig)
    with pytest.raises(ValueError):
        gh.enabled = False  # type: ignore[misc]


def test_actions_take_run_record_handler_and_ignore():
    config = parse(
        "webhooks:\n  a:\n    scheme: github\n    secret: x\n    max_attempts: 3\n"
        "    actions:\n      push: {handler: 'myapp.hooks:on_push'}\n"
        "      'issue.*': ignore\n      '*': {handler: 'myapp.hooks:other'}\n"
    )
    source = config.webhooks["a"]
    assert source.max_attempts == 3
    assert source.actions["push"].handler == "myapp.hooks:on_push"
    assert source.actions["issue.*"].ignore
    assert set(source.actions) == {"push", "issue.*", "*"}


def test_an_action_must_run_a_pipeline_that_exists():
    with pytest.raises(ConfigError) as info:
        parse(
            "webhooks:\n  a:\n    scheme: github\n    secret: x\n"
            "    actions:\n      push: {run: nowhere}\n"
        )
    assert "webhooks.a.actions.push.run: no pipeline named 'nowhere' (pipelines: none defined)" in (
        str(info.value)
    )
