"""`webhooks:` and `metrics:` are checked with their real models only when the file has
them (config/_sections.py): a file without them never builds those models, and a file with
them gets the same typed objects and the same errors, at the same lines, as before."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from interlink.config import (
    InterlinkConfig,
    MetricConfig,
    StripeWebhookConfig,
    parse_config,
)
from interlink.errors import ConfigError

BASE = """\
database: sqlite:///x.db
connections:
  shop: {base_url: "http://127.0.0.1:9"}
resources:
  shop:
    orders: {path: /orders}
pipelines:
  orders: {source: shop.orders, destination: "sql:orders"}
"""

SECTIONS = """\
webhooks:
  stripe:
    scheme: stripe
    secret: whsec_0123456789abcdef
    actions:
      order.updated: {run: orders}
metrics:
  orders:
    source: sql:orders
    op: count
    time_field: created_at
"""


def test_present_sections_become_their_models() -> None:
    config = parse_config(BASE + SECTIONS, file="interlink.yaml")
    assert isinstance(config.webhooks["stripe"], StripeWebhookConfig)
    assert isinstance(config.metrics["orders"], MetricConfig)
    # What the models give back validates into the same config.
    assert InterlinkConfig.model_validate(config.model_dump()) == config


def test_absent_sections_are_empty() -> None:
    config = parse_config(BASE, file="interlink.yaml")
    assert config.webhooks == {} and config.metrics == {}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "webhooks:\n  stripe: {scheme: stripe, secrett: whsec_0123456789abcdef}\n",
            10,
            "webhooks.stripe: unknown key 'secrett'; did you mean 'secret'?",
        ),
        (
            "webhooks:\n  gh:\n    scheme: githubb\n",
            11,
            "webhooks.gh.scheme: expected one of standard, stripe, github, shopify, slack, "
            "hmac; got 'githubb'; did you mean 'github'?",
        ),
        (
            "metrics:\n  n:\n    source: sql:orders\n    op: count\n    time_field: t\n"
            "    opp: sum\n",
            14,
            "metrics.n: unknown key 'opp'; did you mean 'op'?",
        ),
        (
            "metrics:\n  n: {source: shop.nope, op: count, time_field: t}\n",
            10,
            "metrics.n.source",
        ),
        (
            "webhooks:\n  s:\n    scheme: stripe\n    secret: whsec_0123456789abcdef\n"
            "    actions: {order.updated: {run: nope}}\n",
            13,
            "webhooks.s.actions.order.updated.run: no pipeline named 'nope'",
        ),
    ],
)
def test_errors_in_a_section_keep_their_key_line_and_hint(
    text: str, line: int, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + text, file="interlink.yaml")
    shown = str(caught.value)
    assert message in shown, shown
    assert shown.startswith(f"interlink.yaml:{line}: "), shown


def test_errors_in_a_section_come_with_the_others(tmp_path: Path) -> None:
    text = BASE.replace("{path: /orders}", "{path: /orders, pagee: 1}") + (
        "webhooks:\n  stripe: {scheme: stripe}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file="interlink.yaml")
    lines = [str(error) for error in caught.value.errors]  # type: ignore[attr-defined]
    assert any("unknown key 'pagee'" in line for line in lines), lines
    assert any("webhooks.stripe" in line and "secret" in line for line in lines), lines


_PROBE = textwrap.dedent(
    """
    import sys
    from interlink.config import load_config
    load_config(sys.argv[1])
    print(sorted(m for m in ("interlink.config._webhooks", "interlink.config._metrics")
                 if m in sys.modules))
    """
)


@pytest.mark.parametrize(
    ("sections", "loaded"),
    [("", "[]"), (SECTIONS, "['interlink.config._metrics', 'interlink.config._webhooks']")],
)
def test_a_file_without_the_sections_never_builds_their_models(
    tmp_path: Path, sections: str, loaded: str
) -> None:
    config = tmp_path / "interlink.yaml"
    config.write_text(BASE + sections)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == loaded
