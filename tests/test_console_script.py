"""The console script (`interlink`, `python -m interlink`) starts with the cyclic garbage
collector off, and every command runs with it on again: `run` once its start-up is frozen
out of the collector's sight, the others before they start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from interlink.sandbox import SandboxServer, create_shop_app
from tests.cli.test_run_imports import _write_config

_PROBE = (
    "import atexit, gc, sys\n"
    "import interlink.cli._runtime as runtime\n"
    "seen = []\n"
    "tune = runtime.tune_collector\n"
    "def watched():\n"
    "    seen.append(('before tune', gc.isenabled()))\n"
    "    tune()\n"
    "runtime.tune_collector = watched\n"
    "atexit.register(lambda: print('GC', seen, gc.isenabled(), gc.get_freeze_count() > 0,"
    " file=sys.stderr))\n"
    "from interlink.__main__ import main\n"
    "main()\n"
)


def _collector(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return next(line for line in done.stderr.splitlines() if line.startswith("GC "))


def test_run_starts_without_the_collector_and_runs_with_it(tmp_path: Path) -> None:
    with SandboxServer(create_shop_app(records=30)) as shop:
        config = _write_config(tmp_path, shop.url)
        line = _collector("run", "customers", "--config", str(config))
    # Off through the imports, on (with the start-up frozen) for the records.
    assert line == "GC [('before tune', False)] True True", line


def test_other_commands_run_with_the_collector_on(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "http://127.0.0.1:9")
    assert _collector("check", "--config", str(config)) == "GC [] True False"
    assert _collector("--version").startswith("GC [] ")


def test_python_dash_m_interlink_is_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "interlink", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith("interlink "), done
