"""Where the optional seconds field of `schedule:` goes (issue 15, section 3): last, as
croniter reads six fields; the Quartz/Spring form with seconds first is refused where it
can be told apart, with the expression written the accepted way."""

from __future__ import annotations

import calendar

import pytest

from interlink.config import check_cron, parse_config
from interlink.errors import ConfigError
from interlink.jobs import latest_tick

PIPELINE = (
    "connections:\n  s:\n    base_url: https://x\n"
    "resources:\n  s:\n    c: {path: /c}\n"
    "pipelines:\n  p:\n    source: s.c\n    destination: {sql: t}\n"
    '    schedule: "%s"\n'
)
T0 = calendar.timegm((2026, 12, 1, 10, 7, 40, 0, 0, 0))  # 10:07:40 UTC


def error_for(cron: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(PIPELINE % cron, file="interlink.yaml", env={})
    lines = [str(e) for e in info.value.errors]
    assert len(lines) == 1, lines
    assert lines[0].startswith("interlink.yaml:11: pipelines.p.schedule: ")
    return lines[0].removeprefix("interlink.yaml:11: pipelines.p.schedule: ")


@pytest.mark.parametrize(
    "cron",
    ["*/15 * * * *", "0 6 * * 1-5", "@hourly", "@daily", "*/15 * * * * 30", "* * * * * */1"],
)
def test_accepted(cron):
    config = parse_config(PIPELINE % cron, file="interlink.yaml", env={})
    assert config.pipelines["p"].schedule == cron


def test_seconds_are_the_last_field_when_the_schedule_runs():
    # `*/5 * * * * 30`: every 5 minutes, at second 30.
    assert latest_tick("*/5 * * * * 30", T0) == T0 - 2 * 60 - 10
    assert latest_tick("*/5 * * * *", T0) == T0 - 2 * 60 - 40


def test_seconds_first_that_would_run_every_second_is_refused_with_the_fix():
    assert error_for("0 */5 * * * *") == (
        "6 fields: the 6th is seconds, written last (minute hour day month weekday second); "
        "'*' there would run it every second (write */1 if you mean that); if you meant "
        "seconds first (Quartz, Spring), write '*/5 * * * * 0', or '*/5 * * * *' without "
        "seconds; got '0 */5 * * * *'"
    )


def test_quartz_question_mark_is_refused_with_the_fix():
    line = error_for("0 30 9 * * ?")
    assert "'?' there is not a second" in line
    assert "write '30 9 * * * 0', or '30 9 * * *' without seconds" in line


def test_a_day_name_in_the_last_field_is_refused():
    line = error_for("0 0 12 ? * MON")
    assert "'MON' there is not a second; seconds first (Quartz, Spring) is not read" in line


def test_seven_fields_are_refused():
    assert "7 fields (Quartz's seconds first and year last) are not read" in error_for(
        "0 0 12 * * ? 2026"
    )


@pytest.mark.parametrize("cron", ["every hour", "61 * * * *", "*/15 * * *", "* * 32 * *"])
def test_other_mistakes_name_the_accepted_forms(cron):
    assert error_for(cron) == (
        "expected a cron expression of 5 fields, minute hour day month weekday (UTC), and "
        "optionally a 6th for seconds, written last, such as '*/15 * * * *', "
        f"'*/15 * * * * 30' or @hourly/@daily; got '{cron}'"
    )


def test_check_cron_returns_what_it_accepts():
    assert check_cron("@weekly") == "@weekly"
    with pytest.raises(ValueError, match="seconds, written last"):
        check_cron("* * * * * *")
