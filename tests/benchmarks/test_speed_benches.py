"""Smoke runs of benchmarks/startup.py, append_window.py and pg_load.py at their smallest,
so that the harnesses themselves (server, processes measured by GNU time, row counts
checked, ratios printed) are known to work; and the extract_load.py child held to what a
real run imports. Whether a target is met is the benchmark's verdict on a quiet machine,
not this test's: exit code 1 (a target missed) is accepted, a crash is not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from _process import run_measured  # noqa: E402
from _shop_config import shop_config  # noqa: E402
from extract_load import INTERLINK_IMPORTS, TOKEN  # noqa: E402
from interlink.sandbox import SandboxServer, create_shop_app  # noqa: E402

_MODULES_AT_EXIT = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('\\n'.join(sorted(sys.modules)), file=sys.stderr))\n"
)


def _bench(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_a_child_peak_is_its_own_not_its_parents(tmp_path: Path) -> None:
    """The parent holds 200 MiB; `python -c pass` must not report it as its own peak."""
    ballast = bytearray(200 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page
    measured = run_measured([sys.executable, "-c", "pass"], cwd=tmp_path)
    assert measured.code == 0 and measured.rss_exact
    assert measured.peak_mib < 100, measured
    grow = "b = bytearray(150 * 2**20); b[::4096] = b'x' * len(b[::4096])"
    big = run_measured([sys.executable, "-c", grow], cwd=tmp_path)
    assert big.peak_mib > 150, big
    del ballast


def test_startup_prints_the_ratio_of_an_incremental_run_to_the_bare_script() -> None:
    out = _bench("startup.py", "--rounds", "1", "--records", "50")
    lines = out.splitlines()
    assert any(line.startswith("interlink run ") for line in lines), out
    assert any(line.startswith("bare script ") for line in lines), out
    assert "interlink run / bare script:" in out and "target <= 2.0x" in out


def test_append_window_times_the_runs_that_look_up_every_record() -> None:
    out = _bench(
        "append_window.py",
        "--records",
        "40",
        "--history",
        "2000",
        "--rounds",
        "1",
        "--insert-rows",
        "2000",
    )
    lines = out.splitlines()
    assert "40 records looked up a run in a table of 2,040 rows" in lines[0], out
    assert any(line.startswith("interlink ") for line in lines), out
    assert "with the index, random order" in out, out


@pytest.mark.postgres
def test_pg_load_loads_every_record_for_each_contender(postgres_url: str) -> None:
    out = _bench("pg_load.py", "--records", "2000", "--rounds", "1", "--url", postgres_url)
    for name in ("interlink append", "interlink merge", "script copy", "script copy merge"):
        assert any(line.startswith(name + " ") for line in out.splitlines()), out
    assert "interlink append vs script copy:" in out
    assert "interlink merge vs script copy merge:" in out


def _modules(code: str, *args: str) -> set[str]:
    """The modules a Python process running `code` had loaded when it exited."""
    done = subprocess.run(
        [sys.executable, "-c", _MODULES_AT_EXIT + code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return set(done.stderr.split())


def test_extract_load_imports_nothing_before_its_clock_that_the_run_does_not(
    tmp_path: Path,
) -> None:
    """extract_load.py's interlink child imports `INTERLINK_IMPORTS` before it starts its
    clock, and the whole process pays for them: each must be something `interlink run`
    of the benchmark's pipeline loads anyway (it once imported the rich tables, ~18 ms,
    which a run writing to a pipe never loads)."""
    config = tmp_path / "interlink.yaml"
    with SandboxServer(create_shop_app(records=30, token=TOKEN)) as shop:
        config.write_text(
            shop_config(f"sqlite:///{tmp_path / 'interlink.db'}", shop.url, TOKEN, page_size=10)
        )
        run = _modules(
            "from interlink.__main__ import main\nmain()\n",
            "run",
            "customers",
            "--config",
            str(config),
        )
    before_clock = _modules(
        "import importlib, sys\n"
        "from interlink.cli._runtime import skip_httpx_command_line\n"
        "skip_httpx_command_line()\n"
        f"for module in {INTERLINK_IMPORTS!r}:\n"
        "    importlib.import_module(module)\n"
        "from interlink.__main__ import main\n"
    )
    assert "interlink.sync" in run and "rich" not in run, sorted(run)
    assert before_clock - run == set()
