"""`server.rate_limits` refuses limits and periods that are not positive.

See issue 11, section 2: `limit: 0` or a period of 0 passed `interlink check`, then every
request to `interlink serve` answered 500 (ZeroDivisionError in the rate limiter).
"""

from __future__ import annotations

import textwrap

import pytest

from interlink.config import RouteLimit, parse_config
from interlink.errors import ConfigError


def error_for(value: str) -> str:
    text = textwrap.dedent(
        f"""\
        server:
          rate_limits:
            "POST /jobs": 10/min
            default: {value}
        """
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="interlink.yaml", env={})
    lines = [str(e) for e in vars(info.value)["errors"]]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"10/0min"', "default: expected a period longer than 0, such as '10/5min'; got '10/0min'"),
        ('"10/0s"', "default: expected a period longer than 0, such as '10/5min'; got '10/0s'"),
        ('"0/min"', "default: expected a rate such as '10/min', '100/m' or '5/s'; got '0/min'"),
        ("{limit: 0, period: 60}", "default.limit: expected a number at least 1; got 0"),
        ("{limit: -5, period: 60}", "default.limit: expected a number at least 1; got -5"),
        ("{limit: 5, period: 0}", "default.period: expected a number greater than 0; got 0"),
        ("{limit: 5, period: -1}", "default.period: expected a number greater than 0; got -1"),
        ("{limit: 5, period: .inf}", "default.period: expected a finite number; got inf"),
        ("{limit: 5, period: .nan}", "default.period: expected a number greater than 0; got nan"),
        (
            "{limit: 10000000000000, period: 1}",
            "default.limit: expected a number at most 1000000000; got 10000000000000",
        ),
        ("{limit: 5}", "default: missing required key 'period'"),
        (
            "{limit: 5, period: 60, burst: 9}",
            "default: unknown key 'burst' (expected one of limit, period)",
        ),
    ],
)
def test_a_limit_or_period_that_is_not_positive_is_refused(value, expected):
    assert error_for(value) == f"interlink.yaml:4: server.rate_limits.{expected}"


@pytest.mark.parametrize(
    ("value", "limit", "period"),
    [
        ('"10/min"', 10, 60.0),
        ('"10/5min"', 10, 300.0),
        ("{limit: 3, period: 2}", 3, 2.0),
        ("{limit: 3, period: 1m}", 3, 60.0),
        ("{limit: 3, period: 500ms}", 3, 0.5),
    ],
)
def test_good_limits_still_load(value, limit, period):
    config = parse_config(
        f"server:\n  rate_limits:\n    default: {value}\n", file="interlink.yaml", env={}
    )
    assert config.server.rate_limits["default"] == RouteLimit(limit=limit, period=period)


def test_route_limit_refuses_zero_when_built_in_code():
    with pytest.raises(ValueError):
        RouteLimit(limit=0, period=60)
    with pytest.raises(ValueError):
        RouteLimit(limit=1, period=0)
