"""Run a contender as a process of its own and measure it from outside: wall time, CPU
time and peak RSS.

Peak RSS is taken by `/usr/bin/time` (GNU time), which forks the contender from its own
small process. Read from `os.wait4` instead, a child's `ru_maxrss` includes the pages of
the process that forked it until the exec: a benchmark parent that imported httpx or
psycopg (40-70 MiB) would set a floor under every child's figure, and a small script would
look as big as its parent. Without GNU time it falls back to `os.wait4` and says so
(`Measured.rss_exact`).

`compiled_env` gives the contenders what an installed package has: its modules compiled
to bytecode. This machine's environment may set PYTHONDONTWRITEBYTECODE, and interlink
runs from its source tree, so without it every process compiles interlink's modules from
source again (about 0.1 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["Measured", "compiled_env", "run_measured"]

_GNU_TIME = shutil.which("time", path="/usr/bin:/bin")


@dataclass(frozen=True)
class Measured:
    code: int
    wall: float
    """Seconds from spawning the process to its exit."""
    cpu: float
    """User + system seconds of the process."""
    peak_mib: float
    rss_exact: bool
    """False when the peak came from `os.wait4` (it includes the parent's pages)."""


def run_measured(
    argv: list[str],
    *,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    stdout: int | IO[Any] | None = subprocess.DEVNULL,
    stderr: int | IO[Any] | None = None,
) -> Measured:
    """Run `argv` to its end and measure it; the caller checks `code`."""
    if _GNU_TIME is None:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        cpu = usage.ru_utime + usage.ru_stime
        code = os.waitstatus_to_exitcode(status)
        return Measured(code, wall, cpu, usage.ru_maxrss / 1024, False)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        timed = [_GNU_TIME, "-q", "-f", "%M %U %S", "-o", report.name, *argv]
        started = time.perf_counter()
        code = subprocess.run(timed, cwd=cwd, env=env, stdout=stdout, stderr=stderr).returncode
        wall = time.perf_counter() - started
        # GNU time's report is the last line (a signal adds a line before it).
        peak_kib, user, system = report.read().split("\n")[-2].split()
    return Measured(code, wall, float(user) + float(system), int(peak_kib) / 1024, True)


def compiled_env(
    folder: Path, *, compiled: bool = True, source: Path | None = None
) -> dict[str, str]:
    """The environment for contender processes: with `compiled`, bytecode is written to
    and read from `folder` (PYTHONPYCACHEPREFIX) and interlink's modules are compiled into
    it now; without, nothing is written (every process compiles from source). `source`,
    a `src` folder, puts another interlink first on PYTHONPATH."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    if not compiled:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
        return env
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(folder)
    if source is not None:
        package = str(source / "interlink")
    else:
        import interlink

        package = str(Path(interlink.__file__).parent)
    compile_all = [sys.executable, "-m", "compileall", "-q", package]
    subprocess.run(compile_all, env=env, check=True, stdout=subprocess.DEVNULL)
    return env
