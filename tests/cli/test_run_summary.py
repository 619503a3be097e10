"""The run summary written without rich (`cli/_run_summary.plain_text`) is, character for
character, what rich writes to a file or a pipe; where it cannot be, it says so (None) and
rich draws it. `plain_output` says when rich would write plain text at all."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from interlink.cli._run_summary import output_width, plain_output, plain_text, run_summary
from interlink.sandbox import SandboxServer, create_shop_app
from interlink.sync import RunResult
from tests.cli.test_run_imports import _write_config

RICH_SETTINGS = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "JUPYTER_COLUMNS")


def _drawn_by_rich(result: RunResult, width: int = 80) -> str:
    from rich.console import Console

    from interlink.cli._render import show_run

    file = io.StringIO()
    show_run(result, Console(file=file, highlight=False, width=width))
    return file.getvalue()


def _result(**fields: object) -> RunResult:
    counts = {
        "read": 1_000,
        "created": 990,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "skipped": 7,
        "failed": 3,
        "pages": 10,
    }
    counts.update(fields.pop("counts", {}))  # type: ignore[call-overload]
    result = RunResult(pipeline="customers", run_id=12, status="succeeded", elapsed=1.25)
    result.counts = counts
    for name, value in fields.items():
        setattr(result, name, value)
    return result


ERRORS = [
    {"key": str(i), "step": "write", "error": f"column zip: value {i} too long"} for i in range(12)
]

PLAIN = {
    "succeeded": _result(counts={"failed": 0}),
    "nothing new": _result(counts={"read": 0, "created": 0, "skipped": 0, "failed": 0}),
    "failed records": _result(status="completed_with_errors", errors=ERRORS[:3]),
    "more than ten failed": _result(
        status="completed_with_errors", errors=ERRORS, counts={"failed": 12}
    ),
    "more failed than errors kept": _result(
        status="completed_with_errors", errors=ERRORS[:3], counts={"failed": 12}
    ),
    "a reason": _result(status="failed", message="the API answered 401"),
    "a note": _result(message="nothing was deleted"),
    "warnings": _result(warnings=["the total moved from 1,000 to 1,002", "a page repeated"]),
    "dry run": _result(dry_run=True, would_write=990),
    "by id": _result(ids=["1", "2", "3"]),
    "an account and a resumed read": _result(account="acme", resumed=True),
    "a million": _result(counts={"read": 1_000_000, "created": 999_999}),
    "a line of exactly 80": _result(warnings=["w" * 71]),
}
"""Summaries the plain writer must write itself (and exactly as rich would)."""

RICH = {
    "a trial (its note is longer than 80)": _result(trial=True, wrote_to="customers__trial"),
    "a line longer than 80": _result(warnings=["w" * 72]),
    "a long title": _result(pipeline="p" * 60, status="completed_with_errors"),
    "a name that is not ASCII": _result(pipeline="kundenübersicht"),
    "wide characters": _result(warnings=["顧客の一覧"]),
    "a tab": _result(message="a\tb"),
    "a line ending in a space": _result(warnings=["trailing "]),
    "counts too wide for 80 columns": _result(
        counts=dict.fromkeys(("read", "created", "updated", "unchanged", "deleted"), 10**15)
    ),
}
"""Summaries only rich lays out: the plain writer must decline them."""


@pytest.mark.parametrize("width", [80, 132])
@pytest.mark.parametrize("case", PLAIN)
def test_plain_text_is_what_rich_writes_to_a_pipe(case: str, width: int) -> None:
    result = PLAIN[case]
    text = plain_text(run_summary(result), width)
    assert text is not None, case
    assert text == _drawn_by_rich(result, width)


def test_the_failed_records_not_listed_are_counted() -> None:
    ten = plain_text(run_summary(PLAIN["more than ten failed"]))
    three = plain_text(run_summary(PLAIN["more failed than errors kept"]))
    assert ten is not None and three is not None
    assert ten.splitlines()[-1] == "  ... 2 more failed records"
    assert three.splitlines()[-1] == "  ... 9 more failed records"


def test_markup_in_a_name_is_text() -> None:
    result = _result(account="[b]acme[/b]:smile:")
    assert "for [b]acme[/b]:smile:: succeeded" in _drawn_by_rich(result)
    assert plain_text(run_summary(result)) == _drawn_by_rich(result)


def test_narrower_than_the_table_is_left_to_rich() -> None:
    result = PLAIN["succeeded"]
    summary = run_summary(result)
    text = plain_text(summary, 70)  # the table is 70 wide
    assert text is not None
    assert text == _drawn_by_rich(result, 70)
    assert max(map(len, text.splitlines())) == 70
    assert plain_text(summary, 69) is None
    assert plain_text(run_summary(PLAIN["a line of exactly 80"]), 79) is None


@pytest.mark.parametrize("case", RICH)
def test_what_only_rich_can_lay_out_is_left_to_rich(case: str) -> None:
    assert plain_text(run_summary(RICH[case])) is None


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(20, 200),
    pipeline=st.text(min_size=1, max_size=40),
    status=st.sampled_from(["succeeded", "completed_with_errors", "failed", "cancelled"]),
    counts=st.lists(st.integers(0, 10**13), min_size=7, max_size=7),
    warnings=st.lists(st.text(max_size=90), max_size=3),
    message=st.none() | st.text(max_size=90),
)
def test_any_summary_is_written_as_rich_writes_it_or_left_to_rich(
    width: int,
    pipeline: str,
    status: str,
    counts: list[int],
    warnings: list[str],
    message: str | None,
) -> None:
    names = ("read", "created", "updated", "unchanged", "deleted", "skipped", "failed")
    result = _result(
        pipeline=pipeline,
        status=status,
        counts=dict(zip(names, counts, strict=True)),
        warnings=warnings,
        message=message,
    )
    text = plain_text(run_summary(result), width)
    if text is not None:
        assert text == _drawn_by_rich(result, width)


def test_plain_output_only_where_rich_writes_plain_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in RICH_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    with open(tmp_path / "out.txt", "w", encoding="utf-8") as file:
        assert plain_output(file)
        monkeypatch.setenv("FORCE_COLOR", "1")
        assert not plain_output(file)  # rich writes colours to it
        monkeypatch.delenv("FORCE_COLOR")
    with open(tmp_path / "latin.txt", "w", encoding="latin-1") as file:
        assert not plain_output(file)  # rich draws its boxes in ASCII there
    leader, follower = os.openpty()
    try:
        with open(follower, "w", encoding="utf-8", closefd=False) as terminal:
            assert not plain_output(terminal)
    finally:
        os.close(leader)
        os.close(follower)
    closed = open(tmp_path / "closed.txt", "w", encoding="utf-8")
    closed.close()
    assert not plain_output(closed)


def test_the_width_is_the_one_rich_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    for columns in ("132", "80", "5", "0", "00", "wide", ""):
        monkeypatch.setenv("COLUMNS", columns)
        assert output_width() == Console(file=io.StringIO()).width, columns
    monkeypatch.setenv("COLUMNS", "0")
    assert plain_text(run_summary(PLAIN["succeeded"]), output_width()) is None
    monkeypatch.setenv("COLUMNS", "wide")  # not a number: rich ignores it
    leader, follower = os.openpty()
    try:
        os.set_blocking(leader, True)
        with monkeypatch.context() as patched:
            # Standard input on a terminal: rich lays out a pipe's text to its width.
            stdin = os.dup(0)
            try:
                os.dup2(follower, 0)
                import fcntl
                import struct
                import termios

                fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
                assert output_width() == 100
                patched.delenv("COLUMNS")
                assert output_width() == 100
            finally:
                os.dup2(stdin, 0)
                os.close(stdin)
    finally:
        os.close(leader)
        os.close(follower)


def _run(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k not in RICH_SETTINGS}
    return subprocess.run(
        [sys.executable, "-m", "interlink", "run", "customers", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**inherited, "PYTHONIOENCODING": "utf-8", **env},
    )


def _steady(text: str) -> str:
    """The output without what differs from run to run (the run's number, its timing)."""
    text = re.sub(r"run \d+ of", "run N of", text)
    return re.sub(r"in \d+\.\d+ s \([\d,]+ records/s\)", "in T s (R records/s)", text)


def _config(folder: Path, base_url: str) -> Path:
    folder.mkdir()
    return _write_config(folder, base_url)


def test_interlink_run_to_a_pipe_writes_what_rich_would(tmp_path: Path) -> None:
    with SandboxServer(create_shop_app(records=25)) as shop:
        plain = _run(_config(tmp_path / "plain", shop.url))
        # FORCE_COLOR set but empty: rich still writes plain text, and interlink leaves the
        # summary to rich (it does not second-guess an environment that speaks to rich).
        drawn = _run(_config(tmp_path / "drawn", shop.url), FORCE_COLOR="")
    assert plain.returncode == drawn.returncode == 0, plain.stderr + drawn.stderr
    assert "┏" in plain.stdout and "│   25 │      25 │" in plain.stdout
    assert _steady(plain.stdout) == _steady(drawn.stdout)
