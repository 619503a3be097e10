"""Extract + load into PostgreSQL: customers from a paginated API, interlink against
hand-written psycopg scripts, whole processes, in one run against one server.

The server is extract_load's (`Server`: the shop sandbox in a child process, bearer token,
fixed seed, pages cached and warmed before the first contender), `--records` customers
(default 100,000) read with offset pagination, 1,000 per page. Every contender runs in a
fresh process and writes into a fresh schema of the PostgreSQL at `--url` (default
$INTERLINK_TEST_POSTGRES_URL), made before it starts and dropped after it; the rows are
counted before the drop, and a wrong count stops the benchmark.

  (1) interlink, through its real command line (`interlink run customers`), with
      `write: append` and `write: merge` (upsert by id). interlink's own tables are made
      in the schema before the process starts (as `interlink db upgrade` leaves a
      database): the contender is the load, not the first-time set-up;
  (2) the scripts a careful user would write: sync `httpx.Client`, `orjson.loads`,
      psycopg 3, one transaction per page, address and tags as JSONB:
      "script copy" (`COPY ... FROM STDIN` per page), "script copy merge" (COPY into a
      temporary table, then one `INSERT ... SELECT ... ON CONFLICT (id) DO UPDATE` per
      page), and "script executemany" / "script executemany upsert" (one INSERT per row,
      pipelined by psycopg's executemany);
  (3) with `--baseline DIR`, "baseline append" and "baseline merge": interlink's runs
      with another interlink's source (DIR, a `src` folder) first on PYTHONPATH.

"process s" is from spawning the process to its exit (interpreter start-up and imports
included): the figure the targets use. "work s" is measured inside it, after imports.
Peak RSS is the process's own, taken by GNU time (`_process.run_measured`). Processes run
with interlink compiled to bytecode, as installed (`--bytecode source`: compiled from
source in every process, as from a source tree under PYTHONDONTWRITEBYTECODE). Contenders run
`--rounds` times, interleaved, the order rotated each round; medians count. Targets
(issue 15, section 4): interlink append >= 1.0x "script copy" and interlink merge >= 1.0x
"script copy merge", as whole processes (the ratio is the script's process time over
interlink's).

    INTERLINK_TEST_POSTGRES_URL=postgresql://... \\
    .venv/bin/python benchmarks/pg_load.py [--rounds 5] [--records 100000] [--url URL]
        [--bytecode cached|source] [--baseline OTHER/src]
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from _process import compiled_env, run_measured
from _shop_config import shop_config
from extract_load import COLUMNS, HEADERS, PAGE_SIZE, TOKEN, Server

HERE = Path(__file__).resolve()


def in_schema(url: str, schema: str) -> str:
    """`url` with the schema first on the search path (libpq's `options`)."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


# -- the children -----------------------------------------------------------------------------


def _finish(result_path: str, started: float) -> None:
    Path(result_path).write_text(json.dumps({"work": time.perf_counter() - started}))


def _child_interlink(spec: dict[str, Any]) -> None:
    # As the console script starts (interlink.__main__): the collector off until the
    # run has frozen its start-up objects.
    gc.disable()
    try:
        from interlink.__main__ import main
    except ImportError:  # an interlink from before its console script had its own entry
        from interlink.cli.main import main

    started = time.perf_counter()
    sys.argv = ["interlink", "run", "customers", "--config", spec["config"]]
    code: Any = 0
    try:
        main()
    except SystemExit as exit_:
        code = exit_.code
    if code not in (0, None):
        raise SystemExit(f"interlink run exited with {code}")
    _finish(spec["result"], started)


def _child_script(spec: dict[str, Any]) -> None:
    import httpx
    import orjson
    import psycopg

    mode = spec["mode"]  # copy, copy merge, executemany, executemany upsert
    started = time.perf_counter()
    dumps = orjson.dumps
    names = ", ".join(COLUMNS)
    sets = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
    conn = psycopg.connect(spec["url"])
    conn.execute(
        "CREATE TABLE customers (id BIGINT PRIMARY KEY, email TEXT, first_name TEXT, "
        "last_name TEXT, phone TEXT, company TEXT, address JSONB, tags JSONB, "
        "created_at TEXT, updated_at TEXT)"
    )
    if mode == "copy merge":
        conn.execute("CREATE TEMP TABLE stage (LIKE customers) ON COMMIT DELETE ROWS")
    conn.commit()
    marks = ", ".join(["%s"] * len(COLUMNS))
    insert = f"INSERT INTO customers ({names}) VALUES ({marks})"
    if mode == "executemany upsert":
        insert += f" ON CONFLICT (id) DO UPDATE SET {sets}"
    offset = 0
    with httpx.Client(base_url=spec["base"], headers=HEADERS) as client:
        while True:
            response = client.get("/customers", params={"offset": offset, "limit": PAGE_SIZE})
            response.raise_for_status()
            body = orjson.loads(response.content)
            records = body["data"]
            rows = [
                (
                    r["id"],
                    r["email"],
                    r["first_name"],
                    r["last_name"],
                    r["phone"],
                    r["company"],
                    dumps(r["address"]).decode(),
                    dumps(r["tags"]).decode(),
                    r["created_at"],
                    r["updated_at"],
                )
                for r in records
            ]
            with conn.transaction(), conn.cursor() as cursor:  # one transaction per page
                if mode.startswith("copy"):
                    target = "stage" if mode == "copy merge" else "customers"
                    with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                    if mode == "copy merge":
                        cursor.execute(
                            f"INSERT INTO customers ({names}) SELECT {names} FROM stage "
                            f"ON CONFLICT (id) DO UPDATE SET {sets}"
                        )
                else:
                    cursor.executemany(insert, rows)
            offset += len(records)
            if not records or offset >= body["total"]:
                break
    conn.close()
    _finish(spec["result"], started)


CHILDREN = {"interlink": _child_interlink, "script": _child_script}


# -- running one contender --------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    name: str
    kind: str
    option: str  # interlink: the write mode; script: its mode


CONTENDERS = [
    Contender("interlink append", "interlink", "append"),
    Contender("interlink merge", "interlink", "merge"),
    Contender("script copy", "script", "copy"),
    Contender("script copy merge", "script", "copy merge"),
    Contender("script executemany", "script", "executemany"),
    Contender("script executemany upsert", "script", "executemany upsert"),
]
BASELINE = "baseline"
BASELINES = [
    Contender("baseline append", "interlink", "append"),
    Contender("baseline merge", "interlink", "merge"),
]
"""With `--baseline DIR`: the same runs with another interlink's source first on the path."""
TARGETS = [("interlink append", "script copy"), ("interlink merge", "script copy merge")]


@dataclass
class Run:
    work: float
    process: float
    peak_mib: float
    cpu: float = 0.0


_MAKE_TABLES = "import sys; from interlink.store import Store; Store.open(sys.argv[1]).close()"


def _admin(url: str, sql: str) -> Any:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchone() if sql.startswith("SELECT") else None


def run_one(contender: Contender, base: str, records: int, url: str, env: dict[str, str]) -> Run:
    workdir = Path(tempfile.mkdtemp(prefix="pg-load-"))
    schema = f"bench_load_{uuid.uuid4().hex[:10]}"
    _admin(url, f'CREATE SCHEMA "{schema}"')
    try:
        database = in_schema(url, schema)
        spec: dict[str, Any] = {"base": base, "result": str(workdir / "result.json")}
        if contender.kind == "interlink":
            # interlink's own tables, as `interlink db upgrade` makes them; in a process of
            # its own, so that this one stays small (a child's peak RSS counts its parent's
            # pages until the exec).
            subprocess.run([sys.executable, "-c", _MAKE_TABLES, database], check=True, env=env)
            spec["config"] = str(workdir / "interlink.yaml")
            Path(spec["config"]).write_text(
                shop_config(database, base, TOKEN, page_size=PAGE_SIZE, write=contender.option)
            )
        else:
            spec["url"] = database
            spec["mode"] = contender.option
        log = workdir / "child.log"
        argv = [sys.executable, str(HERE), "--child", contender.kind, json.dumps(spec)]
        with open(log, "wb") as out:
            measured = run_measured(
                argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        if measured.code != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{contender.name} failed (exit {measured.code}):\n{tail}")
        (stored,) = _admin(url, f'SELECT count(*) FROM "{schema}".customers')
        if stored != records:
            raise SystemExit(f"{contender.name} stored {stored:,} rows, expected {records:,}")
        work = float(json.loads(Path(spec["result"]).read_text())["work"])
        return Run(work, measured.wall, measured.peak_mib, measured.cpu)
    finally:
        _admin(url, f'DROP SCHEMA "{schema}" CASCADE')
        shutil.rmtree(workdir, ignore_errors=True)


def measure(
    server: Server, rounds: int, url: str, envs: dict[str, dict[str, str]]
) -> dict[str, list[Run]]:
    contenders = CONTENDERS + (BASELINES if BASELINE in envs else [])
    runs: dict[str, list[Run]] = {c.name: [] for c in contenders}
    for round_number in range(rounds):
        shift = round_number % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            env = envs[BASELINE if contender in BASELINES else "main"]
            run = run_one(contender, server.base, server.records, url, env)
            runs[contender.name].append(run)
            print(
                f"#   round {round_number + 1}: {contender.name:26} process {run.process:6.3f} s"
                f"  work {run.work:6.3f} s  cpu {run.cpu:6.3f} s  peak {run.peak_mib:6.1f} MiB",
                file=sys.stderr,
                flush=True,
            )
    return runs


def report(runs: dict[str, list[Run]], records: int, rounds: int, url: str) -> list[str]:
    import httpx
    import psycopg

    from interlink._version import __version__

    (server_version,) = _admin(url, "SELECT current_setting('server_version')")
    print(
        f"# pg_load: {platform.machine()}, {multiprocessing.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}, interlink {__version__}, httpx {httpx.__version__}, "
        f"psycopg {psycopg.__version__}, PostgreSQL {server_version}; {records:,} records, "
        f"{PAGE_SIZE:,} per page; median of {rounds} rounds"
    )
    med = {
        name: Run(
            statistics.median(r.work for r in found),
            statistics.median(r.process for r in found),
            statistics.median(r.peak_mib for r in found),
            statistics.median(r.cpu for r in found),
        )
        for name, found in runs.items()
    }
    copy = med["script copy"].process
    print(
        f"{'contender':27} {'process s':>9} {'min-max':>13} {'x copy':>7} {'work s':>7} "
        f"{'records/s':>10} {'cpu s':>6} {'peak MiB':>8}"
    )
    for name, m in med.items():
        spread = (
            f"{min(r.process for r in runs[name]):.2f}-{max(r.process for r in runs[name]):.2f}"
        )
        print(
            f"{name:27} {m.process:9.3f} {spread:>13} {copy / m.process:6.2f}x {m.work:7.3f} "
            f"{records / m.process:10,.0f} {m.cpu:6.2f} {m.peak_mib:8.1f}"
        )
    missed = []
    print()
    for ours, theirs in TARGETS:
        # Per round too: the pair ran back to back, so the ratio is less noisy than medians.
        pairs = [t.process / o.process for o, t in zip(runs[ours], runs[theirs], strict=True)]
        ratio = med[theirs].process / med[ours].process
        ok = ratio >= 1.0
        if not ok:
            missed.append(ours)
        print(
            f"{ours} vs {theirs}: {ratio:.2f}x of its speed (per round "
            f"{', '.join(f'{p:.2f}' for p in pairs)})   target >= 1.0x   "
            f"{'ok' if ok else 'BELOW TARGET'}"
        )
    print("all targets met" if not missed else f"missed: {'; '.join(missed)}")
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--url", default=os.environ.get("INTERLINK_TEST_POSTGRES_URL"))
    parser.add_argument("--bytecode", choices=("cached", "source"), default="cached")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="the src/ folder of another interlink (git archive HEAD src | tar -x -C DIR): "
        "its append and merge run as two more contenders, for an A/B in one run",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("spec", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        CHILDREN[args.child](json.loads(args.spec))
        return
    if not args.url:
        raise SystemExit("give --url or set INTERLINK_TEST_POSTGRES_URL")
    started = time.perf_counter()
    pycache = Path(tempfile.mkdtemp(prefix="pg-load-pycache-"))
    try:
        compiled = args.bytecode == "cached"
        envs = {"main": compiled_env(pycache / "main", compiled=compiled)}
        if args.baseline:
            envs[BASELINE] = compiled_env(
                pycache / BASELINE, compiled=compiled, source=args.baseline
            )
        with Server(args.records, cache_pages=True) as server:
            runs = measure(server, args.rounds, args.url, envs)
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
    missed = report(runs, args.records, args.rounds, args.url)
    print(f"# benchmark took {time.perf_counter() - started:.0f} s")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
