"""Enum values get "did you mean" as unknown keys do (issue 15, section 2): one line naming
file, line and key, for every field whose values are a fixed list."""

from __future__ import annotations

import pytest

from interlink.config import parse_config
from interlink.config._messages import did_you_mean
from interlink.errors import ConfigError, UnknownTypeError

CONNECTION = "connections:\n  s:\n    base_url: https://x\n"
RESOURCE = CONNECTION + "resources:\n  s:\n    c:\n      path: /c\n"
PIPELINE = RESOURCE + "pipelines:\n  p:\n    source: s.c\n    destination: {sql: t}\n"


def only(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="interlink.yaml", env={})
    assert len(info.value.errors) == 1, [str(e) for e in info.value.errors]
    return info.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            PIPELINE + "    write: mrege\n",
            "interlink.yaml:12: pipelines.p.write: expected one of append, replace, merge; "
            "got 'mrege'; did you mean 'merge'?",
        ),
        (
            PIPELINE + "    write: Merge\n",
            "interlink.yaml:12: pipelines.p.write: expected one of append, replace, merge; "
            "got 'Merge'; did you mean 'merge'?",
        ),
        (
            PIPELINE + "    conflict: newest\n",
            "interlink.yaml:12: pipelines.p.conflict: expected one of source_wins, "
            "target_wins, newest_wins, manual; got 'newest'; did you mean 'newest_wins'?",
        ),
        (
            PIPELINE + "    deletes: sof\n",
            "interlink.yaml:12: pipelines.p.deletes: expected one of soft, hard; got 'sof'; "
            "did you mean 'soft'?",
        ),
        (
            PIPELINE + "    fields: al\n",
            "interlink.yaml:12: pipelines.p.fields: expected 'all' or a mapping; got 'al'; "
            "did you mean 'all'?",
        ),
        (
            CONNECTION + "    transport: aiohtp\n",
            "interlink.yaml:4: connections.s.transport: expected one of auto, aiohttp, threads, "
            "httpx; got 'aiohtp'; did you mean 'aiohttp'?",
        ),
        (
            CONNECTION + "    auth: {type: api_key, key: abcd, in: heder}\n",
            "interlink.yaml:4: connections.s.auth.in: expected one of header, query; "
            "got 'heder'; did you mean 'header'?",
        ),
        (
            CONNECTION + "    auth: {type: oauth2, preset: strip, client_id: x}\n",
            "interlink.yaml:4: connections.s.auth: preset: expected one of 'stripe', 'google', "
            "'github', 'facebook'; got 'strip'; did you mean 'stripe'?",
        ),
        (
            "webhooks:\n  a:\n    scheme: hmac\n    secret: x\n    algorithm: sha265\n",
            "interlink.yaml:5: webhooks.a.algorithm: expected one of sha1, sha256, sha512; "
            "got 'sha265'; did you mean 'sha256'?",
        ),
        (
            "metrics:\n  m:\n    source: sql:orders\n    time_field: created_at\n"
            "    granularity: weekly\n",
            "interlink.yaml:5: metrics.m.granularity: expected one of day, week, month; "
            "got 'weekly'; did you mean 'week'?",
        ),
    ],
)
def test_a_near_miss_names_the_value_meant(text, expected):
    assert str(only(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            CONNECTION + "    auth: {type: oath2}\n",
            "interlink.yaml:4: connections.s.auth.type: expected one of none, api_key, bearer, "
            "basic, oauth2_client_credentials, oauth2; got 'oath2'; did you mean 'oauth2'?",
        ),
        (
            RESOURCE + "      paginate: {type: offest}\n",
            "interlink.yaml:8: resources.s.c.paginate.type: expected one of offset, page, "
            "cursor, next_url, link_header, relay, single, custom; got 'offest'; "
            "did you mean 'offset'?",
        ),
        (
            RESOURCE + "      type: graphq\n",
            "interlink.yaml:8: resources.s.c.type: expected one of rest, graphql, soap; "
            "got 'graphq'; did you mean 'graphql'?",
        ),
    ],
)
def test_types_are_values_too(text, expected):
    error = only(text)
    assert isinstance(error, UnknownTypeError)
    assert str(error) == expected


@pytest.mark.parametrize(
    ("got", "known"),
    [
        ("median", ["count", "sum", "avg", "min", "max", "count_distinct"]),
        ("base32", ["hex", "base64"]),
        ("curl", ["aiohttp", "httpx"]),
        ("co", ["count", "count_distinct"]),
        ("cou", ["count_distinct", "count_all"]),  # cut short, but which?
        ("", ["a"]),
        (5, ["five"]),
    ],
)
def test_no_guess_when_nothing_is_close_enough(got, known):
    """A wrong guess misleads more than none: `min` for `median`, `base64` for `base32`."""
    assert did_you_mean(got, known) == ""


def test_without_a_guess_the_line_is_as_before():
    assert str(only(CONNECTION + "    transport: curl\n")) == (
        "interlink.yaml:4: connections.s.transport: expected one of auto, aiohttp, threads, "
        "httpx; got 'curl'"
    )
