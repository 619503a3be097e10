"""Start-up: `interlink run` of an incremental sync that finds nothing new, against a bare
script making the same one request and one SQLite write, as whole processes in one run.

One sandbox shop (extract_load's `Server`: a child process on 127.0.0.1, bearer token,
fixed seed, `--records` customers). A first `interlink run` (not timed) reads them all
into a SQLite file and saves the cursor; every timed run then asks for what changed since
(`?updated_since=<cursor>`, one request, the one record at the cursor comes back
unchanged), writes its checkpoint and run row, and exits. The contenders, each a fresh
process, interleaved, the order rotated each round:

  (1) "interlink run": the console script, `interlink run customers --config ...`;
  (2) "bare script": `httpx.Client` GET with the same query, `orjson.loads`, `sqlite3`
      (WAL) upserting the cursor into a state table in one transaction: the least a
      program that does this job can do;
  (3) for reference: "interlink --help" (the CLI alone) and "python -c pass" (the
      interpreter alone); with `--baseline DIR`, "baseline run": the same `interlink run`
      with another interlink's source (DIR, a `src` folder) first on PYTHONPATH.

Bytecode: this machine's environment may set PYTHONDONTWRITEBYTECODE, and interlink runs
from its source tree, so without help every process would compile interlink's modules
from source (about 0.1 s) where an installed wheel has them compiled. By default
(`--bytecode cached`) every contender runs with PYTHONPYCACHEPREFIX set to a folder of
this run, where interlink is compiled first (`_process.compiled_env`), and each contender
runs once untimed; `--bytecode source` measures the other way.

Wall time is from spawning to exit, CPU time the process's user + system time (steadier
than wall time on a shared machine); peak RSS is the process's own, taken by GNU time
(`_process.run_measured`). Medians over
`--rounds` (default 10); the ratio per round (the pair ran back to back) is printed too.
Target (issue 15, section 4): interlink run within 2x of the bare script.

    .venv/bin/python benchmarks/startup.py [--rounds 10] [--bytecode cached|source]
        [--baseline OTHER/src]
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _process import compiled_env, run_measured
from _shop_config import shop_config
from extract_load import HEADERS, TOKEN, Server

BARE_SCRIPT = """\
import sqlite3, sys
import httpx, orjson
base, database, since = sys.argv[1:4]
with httpx.Client(base_url=base, headers={headers!r}) as client:
    response = client.get(
        "/customers", params={{"updated_since": since, "offset": 0, "limit": 1000}}
    )
    response.raise_for_status()
records = orjson.loads(response.content)["data"]
cursor = max([since, *(r["updated_at"] for r in records)])
conn = sqlite3.connect(database)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=NORMAL")
with conn:
    conn.execute("CREATE TABLE IF NOT EXISTS state (pipeline TEXT PRIMARY KEY, cursor TEXT)")
    conn.execute(
        "INSERT INTO state VALUES ('customers', ?) "
        "ON CONFLICT (pipeline) DO UPDATE SET cursor = excluded.cursor",
        (cursor,),
    )
conn.close()
"""


BASELINE = "baseline run"


@dataclass
class Run:
    wall: float
    cpu: float
    peak_mib: float


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> Run:
    with tempfile.TemporaryFile() as errors:
        measured = run_measured(argv, cwd=cwd, env=env, stderr=errors)
        if measured.code != 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace")[-3000:]
            raise SystemExit(f"{argv} exited with {measured.code}:\n{text}")
    return Run(measured.wall, measured.cpu, measured.peak_mib)


def _interlink() -> list[str]:
    script = Path(sys.executable).parent / "interlink"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "interlink"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--bytecode", choices=("cached", "source"), default="cached")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="the src/ folder of another interlink (git archive HEAD src | tar -x -C DIR): "
        "its `interlink run` runs as one more contender, for an A/B in one run",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="startup-bench-"))
    env = compiled_env(work / "pycache", compiled=args.bytecode == "cached")
    try:
        with Server(args.records, cache_pages=False) as server:
            config = work / "interlink.yaml"
            db = work / "interlink.db"
            config.write_text(shop_config(f"sqlite:///{db}", server.base, TOKEN, incremental=True))
            interlink = _interlink()
            # The first (full) read, not timed: it leaves the cursor for the timed runs.
            _timed([*interlink, "run", "customers", "--config", str(config)], env, work)
            with sqlite3.connect(db) as conn:
                (since,) = conn.execute("SELECT max(updated_at) FROM customers").fetchone()
            bare = work / "bare.py"
            bare.write_text(BARE_SCRIPT.format(headers=HEADERS))
            contenders = {
                "interlink run": [*interlink, "run", "customers", "--config", str(config)],
                "bare script": [
                    sys.executable,
                    str(bare),
                    server.base,
                    str(work / "bare.db"),
                    since,
                ],
                "interlink --help": [*interlink, "--help"],
                "python -c pass": [sys.executable, "-c", "pass"],
            }
            envs = dict.fromkeys(contenders, env)
            if args.baseline:
                # Another interlink's source first on the path: its own database and cursor.
                old = work / "baseline"
                old.mkdir()
                envs[BASELINE] = compiled_env(
                    work / "pycache-baseline",
                    compiled=args.bytecode == "cached",
                    source=args.baseline,
                )
                old_config = old / "interlink.yaml"
                old_config.write_text(
                    shop_config(
                        f"sqlite:///{old / 'interlink.db'}", server.base, TOKEN, incremental=True
                    )
                )
                # An interlink from before `python -m interlink` starts at its old entry.
                old_entry = (
                    interlink
                    if (args.baseline / "interlink" / "__main__.py").exists()
                    else [sys.executable, "-c", "from interlink.cli.main import main; main()"]
                )
                contenders[BASELINE] = [*old_entry, "run", "customers", "--config", str(old_config)]
                _timed(contenders[BASELINE], envs[BASELINE], old)  # its first, full read
            for name, argv in contenders.items():  # warm the bytecode and the OS's caches
                _timed(argv, envs[name], work)
            runs: dict[str, list[Run]] = {name: [] for name in contenders}
            names = list(contenders)
            for round_number in range(args.rounds):
                shift = round_number % len(names)
                for name in names[shift:] + names[:shift]:
                    run = _timed(contenders[name], envs[name], work)
                    runs[name].append(run)
                    print(
                        f"#   round {round_number + 1}: {name:17} {run.wall:6.3f} s "
                        f"cpu {run.cpu:6.3f} s {run.peak_mib:6.1f} MiB",
                        file=sys.stderr,
                        flush=True,
                    )
            with sqlite3.connect(db) as conn:
                statuses = conn.execute(
                    "SELECT status, read, created, updated, unchanged FROM interlink_runs "
                    "ORDER BY id DESC LIMIT 1"
                ).fetchone()
            if statuses[0] != "succeeded" or statuses[2] or statuses[3]:
                raise SystemExit(f"the last incremental run was not a no-op: {statuses}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    import httpx

    from interlink._version import __version__

    print(
        f"# startup: {platform.machine()}, {multiprocessing.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}, interlink {__version__}, httpx {httpx.__version__}, "
        f"SQLite {sqlite3.sqlite_version}; bytecode {args.bytecode}; median of "
        f"{args.rounds} rounds; the last run read {statuses[1]} record(s), "
        f"{statuses[4]} unchanged"
    )
    bare_wall = statistics.median(r.wall for r in runs["bare script"])
    bare_cpu = statistics.median(r.cpu for r in runs["bare script"])
    bare_peak = statistics.median(r.peak_mib for r in runs["bare script"])
    header = (
        f"{'wall s':>7} {'min-max':>12} {'x bare':>7} {'cpu s':>6} {'x bare':>7} "
        f"{'peak MiB':>8} {'x bare':>7}"
    )
    print(f"{'contender':18} {header}")
    for name, found in runs.items():
        wall = statistics.median(r.wall for r in found)
        cpu = statistics.median(r.cpu for r in found)
        peak = statistics.median(r.peak_mib for r in found)
        spread = f"{min(r.wall for r in found):.3f}-{max(r.wall for r in found):.3f}"
        print(
            f"{name:18} {wall:7.3f} {spread:>12} {wall / bare_wall:6.2f}x {cpu:6.3f} "
            f"{cpu / bare_cpu:6.2f}x {peak:8.1f} {peak / bare_peak:6.2f}x"
        )
    pairs = [
        i.wall / b.wall for i, b in zip(runs["interlink run"], runs["bare script"], strict=True)
    ]
    ratio = statistics.median(r.wall for r in runs["interlink run"]) / bare_wall
    ok = ratio <= 2.0
    print(
        f"\ninterlink run / bare script: {ratio:.2f}x (per round, median "
        f"{statistics.median(pairs):.2f}x, {min(pairs):.2f}-{max(pairs):.2f})   target <= 2.0x   "
        f"{'ok' if ok else 'ABOVE TARGET'}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
