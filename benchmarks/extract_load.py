"""Extract + load: customers from a paginated API into SQLite, interlink against a careful
hand-written script and dlt, in one run against one server.

One sandbox shop (`interlink.sandbox.run_sandbox`, bearer token, fixed seed) served by
uvicorn in a child process on 127.0.0.1 for the whole run; `--records` customers (default
100,000) read with offset pagination, `/customers?offset=&limit=1000` ->
`{"data": [...], "total": N}`, and written into a fresh SQLite file by the contenders below.
The server runs with its page cache (`cache_pages=True`): each page is rendered once, while
the server warms up before the first contender, and then served as stored bytes, so that the
server's cost of computing 1,000 customers per page (~12 ms, on the cores the clients use)
does not hide the clients' own (`--no-cache-pages` turns it off). Every contender reads the
same server in the same mode; the "requests" and "misses" columns are what the server
counted while it ran (misses: pages it had to render; 0 means all came from the cache).

  (1) interlink, through its real command line (`interlink run customers --config ...`)
      with an interlink.yaml written next to the database: `paginate: {type: offset,
      page_size: 1000}`, `records: data`, `destination: {sql: customers}`, once with
      `write: merge` (the default: upsert by id) and once with `write: append`;
  (2) the script a careful user would write: sync `httpx.Client`, `orjson.loads`,
      `sqlite3` with WAL and synchronous=NORMAL (as interlink), one transaction per page
      with `executemany`, nested address and tags stored as JSON text; once with a plain
      INSERT ("script insert") and once with `INSERT ... ON CONFLICT(id) DO UPDATE`
      ("script upsert", what it takes for a re-run to work, like interlink's merge);
      plus, for reference, the same loop fetching and parsing only (no database);
  (3) dlt's `rest_api` source (offset paginator, limit 1000, `data_selector: data`,
      `total_path: total`) into duckdb with its defaults, into duckdb with parquet loader
      files (its fastest set-up known here) and into SQLite through its sqlalchemy
      destination. dlt lives in its own virtualenv under the system temp dir, created on
      first use and reused (`--no-dlt` skips it).

Every contender runs in a fresh process of its own: peak RSS is that process's own, taken
by GNU time (`_process.run_measured`; `os.wait4`'s ru_maxrss also counted this parent's
pages), "work s" is measured inside it from after its imports to the last commit,
"process s" from spawning it to its exit (interpreter start-up and imports included), "cpu
s" is the process's user + system time. After each process exits the rows in its target table
are counted; a wrong count stops the benchmark. Contenders run `--rounds` times (dlt
`--dlt-rounds`), interleaved; medians count (of peak RSS too). The whole-process ratios
against the scripts are also printed round by round (median and range of the pairs), since
a pair ran in the same round and the machine's drift over the run cancels out of it.
records/s is `--records` over the median work time; the "x insert" and "x upsert" columns
are throughput ratios against "script insert" and "script upsert".

Targets (issue 4): interlink merge >= 1.0x "script upsert" (append >= 1.0x "script insert");
interlink >= 8x dlt's best; interlink peak RSS <= 2x the script's. Issue 15 asks the same of
the whole process (spawn to exit) against the script's, >= 1.0x, with peak RSS <= 1.5x
the script's; both are checked too. With `--scaling`, the
interlink and script contenders run again against a server of `--scaling-records`
(1,000,000) customers, and interlink's peak RSS there must be within 1.2x of the peak at
`--records`.

    .venv/bin/python benchmarks/extract_load.py [--rounds 3] [--dlt-rounds 1] [--no-dlt]
        [--records 100000] [--scaling] [--scaling-records 1000000] [--no-cache-pages]
        [--bytecode cached|source]

The module imports only the standard library at the top: the children import what they
need, and the dlt children run this same file under the dlt virtualenv's interpreter.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import json
import multiprocessing
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _local_server import free_port, wait_for_port
from _process import compiled_env, run_measured
from _shop_config import shop_config

TOKEN = "bench-token-0123456789"
SEED = 42
PAGE_SIZE = 1000
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
HERE = Path(__file__).resolve()

INTERLINK_IMPORTS = (
    "interlink.config",
    "interlink.connectors",
    "interlink.store",
    "interlink.sync",
)
"""What the interlink child imports before its clock starts: modules `interlink run` of
this pipeline imports anyway (a test holds it to that), so the whole process pays for
nothing the real command would not."""

DLT_VENV = Path(tempfile.gettempdir()) / "dlt-bench-venv"
DLT_REQUIREMENT = "dlt[duckdb,sqlalchemy,parquet]"
DLT_PROBE = (
    "import dlt, duckdb, sqlalchemy, pyarrow; "
    "print(dlt.__version__, duckdb.__version__, sqlalchemy.__version__, pyarrow.__version__)"
)

# The customer record's fields, in the order the API sends them; the table of the
# hand-written script has the same columns (address and tags as JSON text).
COLUMNS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "address",
    "tags",
    "created_at",
    "updated_at",
)


# -- the server -------------------------------------------------------------------------------


def _serve(port: int, records: int, cache_pages: bool) -> None:
    from interlink.sandbox import run_sandbox

    run_sandbox(port, records=records, seed=SEED, token=TOKEN, cache_pages=cache_pages)


class Server:
    """The shop sandbox in a spawned child process, for as long as the `with` lasts.

    With `cache_pages` the sandbox renders each page once and serves its bytes again
    (`create_shop_app(cache_pages=True)`); every page, and the empty one after the last,
    is read once before any contender runs, so all of them read a warm cache.
    """

    def __init__(self, records: int, *, cache_pages: bool) -> None:
        self.records = records
        self.cache_pages = cache_pages
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(self.port, records, cache_pages), daemon=True
        )

    def __enter__(self) -> Server:
        import httpx

        self._process.start()
        try:
            wait_for_port(self.port)
            # A small request (or every page, into the cache) so the first contender does
            # not pay the server's warm-up.
            with httpx.Client(base_url=self.base, headers=HEADERS) as client:
                response = client.get("/customers", params={"offset": 0, "limit": 10})
                response.raise_for_status()
                assert response.json()["total"] == self.records, response.json()["total"]
                if self.cache_pages:
                    for offset in self.offsets():
                        params = {"offset": offset, "limit": PAGE_SIZE}
                        client.get("/customers", params=params).raise_for_status()
        except BaseException:
            self.__exit__()
            raise
        return self

    def offsets(self) -> list[int]:
        """Every page's offset a contender asks for: the scripts' (and the empty page after
        the last), and interlink's, whose pages after the first ask `overlap` records
        back (connectors/_overlap.py)."""
        from interlink.connectors._position_paginators import default_overlap

        offsets = set(range(0, self.records + 1, PAGE_SIZE))
        back = default_overlap(PAGE_SIZE)
        unread = PAGE_SIZE
        while unread < self.records:
            offsets.add(unread - back)
            unread += PAGE_SIZE - back
        return sorted(offsets)

    def stats(self) -> dict[str, Any]:
        """The sandbox's `/_stats`: requests by path and, with the cache, its hits and misses."""
        import httpx

        response = httpx.get(f"{self.base}/_stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.join(5)


# -- the children: each contender's work, in its own process ----------------------------------
#
# A child gets its arguments as JSON in argv and writes {"work": seconds, ...} to the result
# file. The clock starts after the imports, as it would for any long-running job.


def _finish(result_path: str, started: float, **extra: Any) -> None:
    work = time.perf_counter() - started
    Path(result_path).write_text(json.dumps({"work": work, **extra}))


def _child_interlink(spec: dict[str, Any]) -> None:
    # As the console script starts (interlink.__main__): the collector off until the
    # run has frozen its start-up objects.
    gc.disable()
    # The console script's first step (interlink.__main__.main): `import httpx` must not
    # import httpx's own command line (click, rich.syntax, pygments), which the `interlink`
    # process never loads. Without it this child paid ~0.1 s the real command does not.
    from interlink.cli._runtime import skip_httpx_command_line

    skip_httpx_command_line()
    # What `interlink run` imports, imported before the clock starts (the commands import
    # the config loader, the connectors, the store and the sync engine lazily); nothing it
    # does not import (tests/benchmarks: rich, for one, is only for a terminal). The
    # console script's entry: a plain `run` line goes to the run without Typer.
    for module in INTERLINK_IMPORTS:
        importlib.import_module(module)
    from interlink.__main__ import main

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

    mode = spec["mode"]  # "insert", "upsert" or "fetch" (no database)
    started = time.perf_counter()
    dumps = orjson.dumps
    conn: sqlite3.Connection | None = None
    sql = ""
    if mode != "fetch":
        conn = sqlite3.connect(spec["db"])
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, "
            "last_name TEXT, phone TEXT, company TEXT, address TEXT, tags TEXT, "
            "created_at TEXT, updated_at TEXT)"
        )
        conn.commit()
        names = ", ".join(COLUMNS)
        marks = ", ".join("?" * len(COLUMNS))
        sql = f"INSERT INTO customers ({names}) VALUES ({marks})"
        if mode == "upsert":
            sets = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
            sql += f" ON CONFLICT(id) DO UPDATE SET {sets}"
    fetched = 0
    offset = 0
    with httpx.Client(base_url=spec["base"], headers=HEADERS) as client:
        while True:
            response = client.get("/customers", params={"offset": offset, "limit": PAGE_SIZE})
            response.raise_for_status()
            body = orjson.loads(response.content)
            records = body["data"]
            fetched += len(records)
            if conn is not None:
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
                with conn:  # one transaction per page
                    conn.executemany(sql, rows)
            offset += len(records)
            if not records or offset >= body["total"]:
                break
    if conn is not None:
        conn.close()
    _finish(spec["result"], started, fetched=fetched)


def _child_dlt(spec: dict[str, Any]) -> None:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    started = time.perf_counter()
    source = rest_api_source(
        {
            "client": {
                "base_url": spec["base"],
                "auth": {"type": "bearer", "token": TOKEN},
                "paginator": {
                    "type": "offset",
                    "limit": PAGE_SIZE,
                    "offset_param": "offset",
                    "limit_param": "limit",
                    "total_path": "total",
                },
            },
            "resources": [
                {"name": "customers", "endpoint": {"path": "customers", "data_selector": "data"}}
            ],
        }
    )
    if spec["destination"] == "sqlite":
        destination: Any = dlt.destinations.sqlalchemy(credentials=f"sqlite:///{spec['db']}")
    else:
        destination = dlt.destinations.duckdb(spec["db"])
    pipeline = dlt.pipeline(
        pipeline_name="extract_load",
        destination=destination,
        dataset_name="shop",
        pipelines_dir=spec["pipelines_dir"],
    )
    if spec.get("parquet"):
        pipeline.run(source, loader_file_format="parquet")
    else:
        pipeline.run(source)
    _finish(spec["result"], started)


CHILDREN = {"interlink": _child_interlink, "script": _child_script, "dlt": _child_dlt}


# -- dlt's virtualenv ---------------------------------------------------------------------------


def dlt_python() -> tuple[Path | None, str]:
    """The dlt virtualenv's interpreter (created when missing) and its versions, or None and
    why not."""
    python = DLT_VENV / "bin" / "python"
    probe = (
        subprocess.run([str(python), "-c", DLT_PROBE], capture_output=True, text=True)
        if python.exists()
        else None
    )
    if probe is None or probe.returncode != 0:
        print(f"# installing {DLT_REQUIREMENT} into {DLT_VENV} (once) ...", file=sys.stderr)
        base = shutil.which("python3") or sys.executable
        steps = [
            [base, "-m", "venv", "--clear", str(DLT_VENV)],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                DLT_REQUIREMENT,
                "orjson",
            ],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-1:])
                return None, f"could not install dlt ({' '.join(step[:4])}...: {tail})"
        probe = subprocess.run([str(python), "-c", DLT_PROBE], capture_output=True, text=True)
        if probe.returncode != 0:
            return None, f"dlt installed but does not import: {probe.stderr.strip()[-200:]}"
    dlt_v, duckdb_v, sqlalchemy_v, pyarrow_v = probe.stdout.split()
    return python, (
        f"dlt {dlt_v} (duckdb {duckdb_v}, sqlalchemy {sqlalchemy_v}, pyarrow {pyarrow_v})"
    )


# -- running and checking one contender ---------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    name: str
    kind: str  # a key of CHILDREN
    options: dict[str, Any] = field(default_factory=dict)
    group: str = "main"  # "main" (every round) or "dlt" (--dlt-rounds)


@dataclass
class Run:
    work: float
    process: float
    cpu: float
    peak_mib: float
    requests: int = 0  # what the server counted while this contender ran
    cache_misses: int = 0  # pages it had to render (0 when every page came from the cache)


SCRIPT_INSERT = "script insert"
SCRIPT_UPSERT = "script upsert"
INTERLINK_MERGE = "interlink merge"
INTERLINK_APPEND = "interlink append"

MAIN = [
    Contender(INTERLINK_MERGE, "interlink", {"write": "merge"}),
    Contender(INTERLINK_APPEND, "interlink", {"write": "append"}),
    Contender(SCRIPT_INSERT, "script", {"mode": "insert"}),
    Contender(SCRIPT_UPSERT, "script", {"mode": "upsert"}),
    Contender("script fetch only (ref)", "script", {"mode": "fetch"}),
]
DLT = [
    Contender("dlt -> duckdb (defaults)", "dlt", {"destination": "duckdb"}, "dlt"),
    Contender(
        "dlt -> duckdb, parquet files", "dlt", {"destination": "duckdb", "parquet": True}, "dlt"
    ),
    Contender("dlt -> sqlite (sqlalchemy)", "dlt", {"destination": "sqlite"}, "dlt"),
]


def _count_sqlite(path: Path, table: str = "customers") -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _count_duckdb(python: Path, path: Path) -> int:
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute('SELECT COUNT(*) FROM shop.customers').fetchone()[0])"
    )
    done = subprocess.run(
        [str(python), "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def run_one(contender: Contender, base: str, records: int, dlt: Path | None) -> Run:
    """Run `contender` once in a fresh process and directory; check what it stored."""
    workdir = Path(tempfile.mkdtemp(prefix="extract-load-"))
    try:
        spec: dict[str, Any] = {
            **contender.options,
            "base": base,
            "result": str(workdir / "result.json"),
        }
        python = sys.executable
        env = dict(os.environ)
        if contender.kind == "interlink":
            spec["db"] = str(workdir / "interlink.db")
            spec["config"] = str(workdir / "interlink.yaml")
            Path(spec["config"]).write_text(
                shop_config(
                    f"sqlite:///{spec['db']}",
                    base,
                    TOKEN,
                    page_size=PAGE_SIZE,
                    write=contender.options["write"],
                )
            )
        elif contender.kind == "script":
            spec["db"] = str(workdir / "script.db")
        else:
            assert dlt is not None
            python = str(dlt)
            suffix = ".db" if contender.options["destination"] == "sqlite" else ".duckdb"
            spec["db"] = str(workdir / f"dlt{suffix}")
            spec["pipelines_dir"] = str(workdir / "dlt-pipelines")
            env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
        log = workdir / "child.log"
        argv = [python, str(HERE), "--child", contender.kind, json.dumps(spec)]
        with open(log, "wb") as out:
            # The rich progress bar of `interlink run` and everything else a child prints
            # go to a file (no terminal), read back only when the child fails.
            measured = run_measured(
                argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        if measured.code != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{contender.name} failed (exit {measured.code}):\n{tail}")
        result = json.loads(Path(spec["result"]).read_text())
        if contender.kind == "script" and contender.options["mode"] == "fetch":
            stored = int(result["fetched"])
        elif contender.kind == "dlt" and contender.options["destination"] == "sqlite":
            # dlt's sqlalchemy destination keeps each dataset in a file of its own.
            stored = _count_sqlite(workdir / "dlt__shop.db")
        elif contender.kind == "dlt":
            assert dlt is not None
            stored = _count_duckdb(dlt, Path(spec["db"]))
        else:
            stored = _count_sqlite(Path(spec["db"]))
        if stored != records:
            raise SystemExit(f"{contender.name} stored {stored:,} rows, expected {records:,}")
        return Run(float(result["work"]), measured.wall, measured.cpu, measured.peak_mib)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


Runs = dict[str, list[Run]]


def _cache_misses(stats: dict[str, Any]) -> int:
    return int(stats.get("page_cache", {}).get("misses", 0))


def measure(
    contenders: list[Contender], server: Server, rounds: int, dlt_rounds: int, dlt: Any
) -> Runs:
    runs: Runs = {c.name: [] for c in contenders}
    for round_number in range(max(rounds, dlt_rounds)):
        due = [c for c in contenders if round_number < (dlt_rounds if c.group == "dlt" else rounds)]
        # Rotate the order each round so no contender always follows the same one.
        shift = round_number % len(due)
        for contender in due[shift:] + due[:shift]:
            before = server.stats()
            run = run_one(contender, server.base, server.records, dlt)
            after = server.stats()
            run.requests = after["requests"] - before["requests"]
            run.cache_misses = _cache_misses(after) - _cache_misses(before)
            runs[contender.name].append(run)
            print(
                f"#   round {round_number + 1}: {contender.name:28} work {run.work:7.3f} s  "
                f"process {run.process:7.3f} s  cpu {run.cpu:7.3f} s  peak {run.peak_mib:7.1f} MiB"
                f"  requests {run.requests}  cache misses {run.cache_misses}",
                file=sys.stderr,
                flush=True,
            )
    return runs


# -- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    work: float
    process: float
    cpu: float
    peak: float
    work_range: tuple[float, float]
    rounds: int
    requests: int  # the median of the requests the server counted per run
    cache_misses: int  # pages the server rendered during all of this contender's runs


def summarise(runs: Runs) -> dict[str, Summary]:
    return {
        name: Summary(
            statistics.median(r.work for r in found),
            statistics.median(r.process for r in found),
            statistics.median(r.cpu for r in found),
            statistics.median(r.peak_mib for r in found),
            (min(r.work for r in found), max(r.work for r in found)),
            len(found),
            int(statistics.median(r.requests for r in found)),
            sum(r.cache_misses for r in found),
        )
        for name, found in runs.items()
        if found
    }


def print_table(title: str, summary: dict[str, Summary], records: int) -> None:
    print(title)
    print(
        f"{'contender':29} {'records/s':>10} {'work s':>7} {'process s':>9} {'cpu s':>6} "
        f"{'peak MiB':>8} {'x insert':>8} {'x upsert':>8}  {'work min-max':13} n "
        f"{'requests':>8} {'misses':>6}"
    )
    insert = summary.get(SCRIPT_INSERT)
    upsert = summary.get(SCRIPT_UPSERT)
    for name, s in summary.items():
        vs_insert = f"{insert.work / s.work:7.2f}x" if insert else ""
        vs_upsert = f"{upsert.work / s.work:7.2f}x" if upsert else ""
        print(
            f"{name:29} {records / s.work:10,.0f} {s.work:7.3f} {s.process:9.3f} {s.cpu:6.2f} "
            f"{s.peak:8.1f} {vs_insert:>8} {vs_upsert:>8}  "
            f"{s.work_range[0]:.3f}-{s.work_range[1]:.3f}  {s.rounds} "
            f"{s.requests:8} {s.cache_misses:6}"
        )


def per_round(runs: Runs, ours: str, theirs: str) -> str:
    """`theirs` over `ours` as whole processes round by round: both ran in the same round,
    minutes apart at most, so the machine's drift over the run cancels out of each ratio."""
    pairs = [t.process / o.process for o, t in zip(runs[ours], runs[theirs], strict=False)]
    if not pairs:
        return "no rounds"
    return (
        f"per round median {statistics.median(pairs):.2f}x "
        f"({min(pairs):.2f}-{max(pairs):.2f}, {len(pairs)} rounds)"
    )


def verdicts(
    summary: dict[str, Summary],
    runs: Runs,
    scaled: dict[str, Summary] | None,
    dlt_note: str | None,
    records: int,
    scaling_records: int,
    cache_pages: bool,
) -> list[str]:
    at = f"at {scaling_records:,} / at {records:,}"
    checks: list[tuple[str, float, str, float]] = []  # label, value, comparison, target
    notes: list[str] = []
    merge, append = summary[INTERLINK_MERGE], summary[INTERLINK_APPEND]
    insert, upsert = summary[SCRIPT_INSERT], summary[SCRIPT_UPSERT]
    checks.append(("throughput interlink merge / script upsert", upsert.work / merge.work, ">=", 1))
    checks.append(
        ("throughput interlink append / script insert", insert.work / append.work, ">=", 1)
    )
    notes.append(
        f"throughput interlink merge / script insert: {insert.work / merge.work:.2f}x "
        f"(whole process: {insert.process / merge.process:.2f}x; merge / upsert whole "
        f"process: {upsert.process / merge.process:.2f}x)"
    )
    dlts = {name: s for name, s in summary.items() if name.startswith("dlt")}
    if dlts:
        best_name = min(dlts, key=lambda name: dlts[name].work)
        best = dlts[best_name]
        checks.append(
            (
                f"throughput interlink merge / {best_name} (best dlt)",
                best.work / merge.work,
                ">=",
                8,
            )
        )
        best_process = min(dlts, key=lambda name: dlts[name].process)
        notes.append(
            f"whole process, interlink merge / {best_process} (best dlt): "
            f"{dlts[best_process].process / merge.process:.1f}x; script insert / best dlt: "
            f"{dlts[best_name].work / insert.work:.1f}x"
        )
    else:
        notes.append(f"dlt not measured: {dlt_note or 'skipped (--no-dlt or --dlt-rounds 0)'}")
    checks.append(("peak RSS interlink merge / script upsert", merge.peak / upsert.peak, "<=", 2))
    checks.append(("peak RSS interlink append / script insert", append.peak / insert.peak, "<=", 2))
    # Issue 15: the whole process a user waits for, and its memory, against the script's.
    checks.append(
        ("whole process merge / upsert (issue 15)", upsert.process / merge.process, ">=", 1)
    )
    checks.append(
        ("whole process append / insert (issue 15)", insert.process / append.process, ">=", 1)
    )
    notes.append(f"whole process merge / upsert, {per_round(runs, INTERLINK_MERGE, SCRIPT_UPSERT)}")
    notes.append(
        f"whole process append / insert, {per_round(runs, INTERLINK_APPEND, SCRIPT_INSERT)}"
    )
    checks.append(("peak RSS merge / upsert (issue 15)", merge.peak / upsert.peak, "<=", 1.5))
    checks.append(("peak RSS append / insert (issue 15)", append.peak / insert.peak, "<=", 1.5))
    if scaled:
        for name in (INTERLINK_MERGE, INTERLINK_APPEND):
            if name in scaled:
                checks.append(
                    (
                        f"peak RSS {name} {at}",
                        scaled[name].peak / summary[name].peak,
                        "<=",
                        1.2,
                    )
                )
        for name in (SCRIPT_INSERT, SCRIPT_UPSERT):
            if name in scaled:
                notes.append(f"peak RSS {name} {at}: {scaled[name].peak / summary[name].peak:.2f}x")
        for name in (INTERLINK_MERGE, INTERLINK_APPEND):
            if name in scaled and SCRIPT_UPSERT in scaled and SCRIPT_INSERT in scaled:
                script = SCRIPT_UPSERT if name == INTERLINK_MERGE else SCRIPT_INSERT
                notes.append(
                    f"at {scaling_records:,}, throughput {name} / {script}: "
                    f"{scaled[script].work / scaled[name].work:.2f}x"
                )
    if cache_pages:
        rendered = {
            name: s.cache_misses
            for found in (summary, scaled or {})
            for name, s in found.items()
            if s.cache_misses
        }
        notes.append(
            "server page cache: every contender read only cached pages"
            if not rendered
            else f"server page cache: pages rendered while contenders ran: {rendered}"
        )
    missed: list[str] = []
    print()
    for label, value, comparison, target in checks:
        ok = value >= target if comparison == ">=" else value <= target
        if not ok:
            missed.append(label)
        verdict = "ok" if ok else ("BELOW TARGET" if comparison == ">=" else "ABOVE TARGET")
        print(f"{label:66} {value:6.2f}x   target {comparison} {target:.1f}x   {verdict}")
    for note in notes:
        print(f"  {note}")
    print("all targets met" if not missed else f"missed: {'; '.join(missed)}")
    return missed


def machine_line(
    records: int,
    rounds: int,
    dlt_rounds: int | None,
    dlt_versions: str | None,
    cache_pages: bool,
) -> str:
    import aiohttp
    import httpx
    import orjson

    from interlink._version import __version__

    dlt_part = f"; {dlt_versions}" if dlt_versions else ""
    return (
        f"# extract_load: {platform.machine()}, {multiprocessing.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, interlink {__version__}, httpx {httpx.__version__}, "
        f"aiohttp {aiohttp.__version__}, orjson {orjson.__version__}, "
        f"SQLite {sqlite3.sqlite_version}{dlt_part}; {records:,} records, "
        f"{PAGE_SIZE:,} per page; median of {rounds} rounds"
        + (f" (dlt {dlt_rounds})" if dlt_versions and dlt_rounds is not None else "")
        + ("; server pages cached" if cache_pages else "; server renders every page")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dlt-rounds", type=int, default=1)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--dlt",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure dlt (installed on first use into a virtualenv in the temp dir)",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also run interlink and the script once against --scaling-records customers",
    )
    parser.add_argument("--scaling-records", type=int, default=1_000_000)
    parser.add_argument("--scaling-rounds", type=int, default=1)
    parser.add_argument(
        "--cache-pages",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the sandbox serves every page from its page cache, warmed before the first "
        "contender (--no-cache-pages: it computes each page's records per request)",
    )
    parser.add_argument(
        "--bytecode",
        choices=("cached", "source"),
        default="cached",
        help="interlink compiled to bytecode once, as installed (default), or compiled from "
        "source in every process (a source tree under PYTHONDONTWRITEBYTECODE)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("spec", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        CHILDREN[args.child](json.loads(args.spec))
        return

    started = time.perf_counter()
    dlt: Path | None = None
    dlt_versions: str | None = None
    dlt_note: str | None = None
    if args.dlt:
        dlt, message = dlt_python()
        if dlt is None:
            dlt_note = message
            print(f"# {message}; going on without dlt", file=sys.stderr)
        else:
            dlt_versions = message
    contenders = MAIN + (DLT if dlt is not None else [])

    # Every child inherits interlink compiled to bytecode, as installed (_process).
    pycache = Path(tempfile.mkdtemp(prefix="extract-load-pycache-"))
    atexit.register(shutil.rmtree, pycache, True)
    children = compiled_env(pycache, compiled=args.bytecode == "cached")
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"):
        os.environ.pop(name, None)
    os.environ.update(children)
    with Server(args.records, cache_pages=args.cache_pages) as server:
        runs = measure(contenders, server, args.rounds, args.dlt_rounds, dlt)
    summary = summarise(runs)
    scaled: dict[str, Summary] | None = None
    if args.scaling:
        at_scale = [c for c in MAIN if c.kind in ("interlink", "script")]
        with Server(args.scaling_records, cache_pages=args.cache_pages) as server:
            scaled_runs = measure(at_scale, server, args.scaling_rounds, 0, None)
        scaled = summarise(scaled_runs)

    title = machine_line(args.records, args.rounds, args.dlt_rounds, dlt_versions, args.cache_pages)
    print_table(title, summary, args.records)
    if scaled is not None:
        print()
        title = machine_line(
            args.scaling_records, args.scaling_rounds, None, None, args.cache_pages
        )
        print_table(title, scaled, args.scaling_records)
    verdicts(summary, runs, scaled, dlt_note, args.records, args.scaling_records, args.cache_pages)
    print(f"# benchmark took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
