"""No-op jobs per second through interlink's queues, against the bare queues they stand on.

Every contender runs the same work in one run: worker processes are started and left
idle, then either 5,000 jobs are inserted in one transaction and the workers drain them
("drain"), or a producer process enqueues jobs one commit at a time while the workers
run them ("steady", as an application enqueues). The clock runs from the insert's commit
(drain) or the producer's start (steady) until the parent sees every job completed.

Contenders:
  SQLite (a fresh database file per round, WAL; both contenders at --durability):
    interlink      SqliteQueue, `interlink worker`'s code path (JobKinds.default(), noop)
    bare           a minimal lease queue: claim one job per transaction with
                   UPDATE ... RETURNING, run it, mark it done (MEASURED.md's baseline)
  PostgreSQL (a fresh database per round; needs --postgres URL or
  INTERLINK_TEST_POSTGRES_URL):
    interlink      ProcrastinateQueue (interlink_jobs + Procrastinate)
    procrastinate  Procrastinate alone: its PsycopgConnector, one async no-op task,
                   defer_async per job (steady) / batch_defer_async (drain)

Pipeline jobs end to end ("e2e"): the sandbox shop in a child process, `interlink serve
--no-worker` and 1 or 2 `interlink worker` processes; `--pipeline-jobs` jobs (over 10
pipelines, each a full read of `--records` customers into its own table) are submitted
through the API with `JobsClient` and waited for. Reported: jobs/s and records/s from the
first submit to the last job done, and each job's submit-to-done latency; the reference
is the same runs one after another in one process with `run_pipeline` (no queue, no API).

Targets (issue 5): the embedded queue >= 5,000 no-op jobs/s steady; on PostgreSQL >= 0.9x
what Procrastinate reaches alone in the same run.

    .venv/bin/python benchmarks/jobs.py [--jobs 5000] [--steady-jobs 10000] [--rounds 3]
        [--workers 1,2] [--concurrency 8] [--backends sqlite,postgresql] [--postgres URL]
        [--durability normal|full] [--pipeline-jobs 40] [--records 2000] [--no-e2e]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


# -- children --------------------------------------------------------------------------------


def _ready() -> None:
    print("ready", flush=True)


def _child_interlink_worker(spec: dict[str, Any]) -> None:
    from interlink.config import InterlinkConfig
    from interlink.jobs import JobKinds, open_queue
    from interlink.store import Store

    config = InterlinkConfig.model_validate(spec["config"])
    store = Store.open(config.database)
    queue = open_queue(config, store)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.call_soon(_ready)
        await queue.work(JobKinds.default(), concurrency=spec["concurrency"], stop=stop)

    asyncio.run(main())


def _child_interlink_producer(spec: dict[str, Any]) -> None:
    from interlink.config import InterlinkConfig
    from interlink.jobs import JobSpec, open_queue
    from interlink.store import Store

    config = InterlinkConfig.model_validate(spec["config"])
    store = Store.open(config.database)
    queue = open_queue(config, store)
    noop = JobSpec("noop")
    _ready()
    sys.stdin.readline()
    for _ in range(spec["jobs"]):
        queue.enqueue(noop)


_BARE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, status TEXT NOT NULL, "
    "lease_until REAL, attempts INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS jobs_todo ON jobs (id) WHERE status = 'todo'",
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status)",
)


def _bare_db(path: str, durability: str = "normal") -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
    db.execute("PRAGMA busy_timeout=10000")
    for statement in _BARE_SCHEMA:
        db.execute(statement)
    return db


def _child_bare_worker(spec: dict[str, Any]) -> None:
    db = _bare_db(spec["db"], spec["durability"])
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    _ready()
    while not stop:
        db.execute("BEGIN IMMEDIATE")
        row = db.execute(
            "UPDATE jobs SET status = 'doing', lease_until = ?, attempts = attempts + 1 "
            "WHERE id = (SELECT id FROM jobs WHERE status = 'todo' ORDER BY id LIMIT 1) "
            "RETURNING id",
            (time.time() + 30,),
        ).fetchone()
        db.execute("COMMIT")
        if row is None:
            time.sleep(0.001)
            continue
        # the no-op job itself
        db.execute("UPDATE jobs SET status = 'done', lease_until = NULL WHERE id = ?", row)


def _child_bare_producer(spec: dict[str, Any]) -> None:
    db = _bare_db(spec["db"], spec["durability"])
    _ready()
    sys.stdin.readline()
    for _ in range(spec["jobs"]):
        db.execute("INSERT INTO jobs (status) VALUES ('todo')")


def _procrastinate_app(url: str) -> Any:
    import logging

    import procrastinate

    # It warns that the app lives in __main__ (this script); nothing here imports it twice.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    return app


def _child_procrastinate_worker(spec: dict[str, Any]) -> None:
    app = _procrastinate_app(spec["url"])

    async def main() -> None:
        async with app.open_async():
            asyncio.get_running_loop().call_soon(_ready)
            await app.run_worker_async(concurrency=spec["concurrency"])

    asyncio.run(main())


def _child_procrastinate_producer(spec: dict[str, Any]) -> None:
    app = _procrastinate_app(spec["url"])
    task = app.tasks["noop"]

    async def main() -> None:
        async with app.open_async():
            _ready()
            await asyncio.to_thread(sys.stdin.readline)
            for _ in range(spec["jobs"]):
                await task.defer_async()

    asyncio.run(main())


CHILDREN = {
    "interlink-worker": _child_interlink_worker,
    "interlink-producer": _child_interlink_producer,
    "bare-worker": _child_bare_worker,
    "bare-producer": _child_bare_producer,
    "procrastinate-worker": _child_procrastinate_worker,
    "procrastinate-producer": _child_procrastinate_producer,
}


# -- the parent ------------------------------------------------------------------------------


def _spawn(role: str, spec: dict[str, Any]) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, str(HERE), "--child", role, json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        raise RuntimeError(f"{role} did not start (said {line!r})")
    return child


def _stop(children: list[subprocess.Popen[str]] | list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


class Backend:
    """One contender: how to set it up, fill it, count what is done, and its children."""

    name = ""
    worker = ""
    producer = ""

    def setup(self) -> None: ...

    def spec(self, concurrency: int) -> dict[str, Any]:
        raise NotImplementedError

    def fill(self, jobs: int) -> None:
        raise NotImplementedError

    def completed(self) -> int:
        raise NotImplementedError

    def analyze(self) -> None:
        """Bring the planner's statistics up to date (PostgreSQL; a no-op elsewhere)."""

    def close(self) -> None: ...


class _InterlinkQueue(Backend):
    """interlink's queue as `open_queue` picks it for `self.config`; `self.conn` counts."""

    worker = "interlink-worker"
    producer = "interlink-producer"
    conn: Any

    def _open(self, config: dict[str, Any]) -> None:
        from interlink.config import InterlinkConfig
        from interlink.jobs import open_queue
        from interlink.store import Store

        self.config = config
        settings = InterlinkConfig.model_validate(config)
        self.store = Store.open(settings.database)
        self.queue = open_queue(settings, self.store)

    def spec(self, concurrency: int) -> dict[str, Any]:
        return {"config": self.config, "concurrency": concurrency}

    def fill(self, jobs: int) -> None:
        from interlink.jobs import JobSpec

        noop = JobSpec("noop")
        with self.store.transaction() as conn:
            for _ in range(jobs):
                self.queue.enqueue(noop, conn=conn)

    def completed(self) -> int:
        query = "SELECT count(*) FROM interlink_jobs WHERE status = 'completed'"
        row = self.conn.execute(query).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.conn.close()
        self.queue.close()
        self.store.close()


class InterlinkSqlite(_InterlinkQueue):
    name = "interlink sqlite"

    def __init__(self, folder: Path, durability: str) -> None:
        self.folder = folder
        self.durability = durability

    def setup(self) -> None:
        path = self.folder / f"interlink-{time.monotonic_ns()}.db"
        self._open(
            {
                "database": f"sqlite:///{path}",
                "jobs": {"durability": self.durability, "poll_interval": 0.5},
            }
        )
        self.conn = sqlite3.connect(path)


class BareSqlite(Backend):
    name = "bare sqlite lease queue"
    worker = "bare-worker"
    producer = "bare-producer"

    def __init__(self, folder: Path, durability: str) -> None:
        self.folder = folder
        self.durability = durability

    def setup(self) -> None:
        self.path = str(self.folder / f"bare-{time.monotonic_ns()}.db")
        self.db = _bare_db(self.path, self.durability)

    def spec(self, concurrency: int) -> dict[str, Any]:
        return {"db": self.path, "durability": self.durability}

    def fill(self, jobs: int) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO jobs (status) VALUES ('todo')", [()] * jobs)
        self.db.execute("COMMIT")

    def completed(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM jobs WHERE status = 'done'").fetchone()[0])

    def close(self) -> None:
        self.db.close()


def _fresh_database(admin_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


class InterlinkPostgres(_InterlinkQueue):
    name = "interlink postgresql"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def setup(self) -> None:
        import psycopg

        url = _fresh_database(self.admin_url, "interlink_bench_jobs")
        self._open({"database": url, "jobs": {"poll_interval": 0.5}})
        self.conn = psycopg.connect(url, autocommit=True)

    def analyze(self) -> None:
        self.conn.execute("ANALYZE")


class ProcrastinateAlone(Backend):
    name = "procrastinate alone"
    worker = "procrastinate-worker"
    producer = "procrastinate-producer"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def setup(self) -> None:
        import psycopg

        self.url = _fresh_database(self.admin_url, "interlink_bench_procrastinate")
        app = _procrastinate_app(self.url)

        async def schema() -> None:
            async with app.open_async():
                await app.schema_manager.apply_schema_async()

        asyncio.run(schema())
        self.conn = psycopg.connect(self.url, autocommit=True)

    def spec(self, concurrency: int) -> dict[str, Any]:
        return {"url": self.url, "concurrency": concurrency}

    def fill(self, jobs: int) -> None:
        app = _procrastinate_app(self.url)

        async def defer() -> None:
            async with app.open_async():
                await app.tasks["noop"].batch_defer_async(*([{}] * jobs))

        asyncio.run(defer())

    def completed(self) -> int:
        query = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        row = self.conn.execute(query).fetchone()
        return int(row[0]) if row else 0

    def analyze(self) -> None:
        self.conn.execute("ANALYZE")

    def close(self) -> None:
        self.conn.close()


def _wait_done(backend: Backend, jobs: int, timeout: float) -> float:
    # Counting is work for the database too: poll often while a run is short (so the end
    # is seen within 5 ms), then every 1% of the time so far (the watcher's share stays
    # small against a slow queue, and the error under 1%).
    started = time.perf_counter()
    deadline = started + timeout
    while True:
        done = backend.completed()
        now = time.perf_counter()
        if done >= jobs:
            return now
        if now > deadline:
            raise RuntimeError(f"{backend.name}: only {done} of {jobs} jobs done in {timeout}s")
        time.sleep(max(0.005, (now - started) / 100))


def measure(
    backend: Backend, mode: str, jobs: int, workers: int, concurrency: int, analyze: bool = False
) -> float:
    """Jobs per second for one round; with `analyze`, a drain starts with the planner's
    statistics up to date (as a long-lived queue's are) instead of a fresh database's."""
    backend.setup()
    children: list[subprocess.Popen[str]] = []
    try:
        spec = backend.spec(concurrency)
        children = [_spawn(backend.worker, spec) for _ in range(workers)]
        time.sleep(0.3)  # let every worker reach its idle loop
        if mode == "drain":
            backend.fill(jobs)
            if analyze:
                backend.analyze()
            started = time.perf_counter()
        else:
            producer = _spawn(backend.producer, {**spec, "jobs": jobs})
            children.append(producer)
            started = time.perf_counter()
            assert producer.stdin is not None
            producer.stdin.write("go\n")
            producer.stdin.flush()
        finished = _wait_done(backend, jobs, timeout=300)
        return jobs / (finished - started)
    finally:
        _stop(children)
        backend.close()


# -- pipeline jobs end to end ----------------------------------------------------------------

E2E_TOKEN = "bench-token"
E2E_PIPELINES = 10


def _e2e_config(database: str, sandbox: str) -> str:
    pipelines = "\n".join(
        f"  p{n}:\n    source: shop.customers\n    destination: {{sql: customers_{n}}}\n"
        f"    write: merge\n    incremental: false"
        for n in range(E2E_PIPELINES)
    )
    return f"""
database: {database}
connections:
  shop:
    base_url: {sandbox}/shop
    auth: {{type: bearer, token: {E2E_TOKEN}}}
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 500}}
pipelines:
{pipelines}
jobs:
  poll_interval: 200ms
server:
  rate_limits:
    "POST /jobs": 100000/min
    default: 100000/min
"""


def _serve_sandbox(port: int, records: int) -> None:
    import uvicorn

    from interlink.sandbox import create_sandbox_app

    app = create_sandbox_app(records=records, token=E2E_TOKEN, cache_pages=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _interlink(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("interlink")), *args]


def _reference_runs(config_path: Path, runs: int) -> float:
    """The same pipeline runs one after another in this process: seconds."""
    from interlink.config import load_config
    from interlink.connectors import Catalog
    from interlink.store import Store
    from interlink.sync import run_pipeline

    config = load_config(config_path)
    store = Store.open(config.database)

    async def go() -> float:
        started = time.perf_counter()
        async with Catalog(config) as catalog:
            for n in range(runs):
                await run_pipeline(config, f"p{n % E2E_PIPELINES}", store=store, catalog=catalog)
        return time.perf_counter() - started

    try:
        return asyncio.run(go())
    finally:
        store.close()


def measure_e2e(
    database: str, sandbox: str, folder: Path, jobs: int, workers: int, records: int
) -> dict[str, float]:
    from _local_server import free_port, wait_for_port
    from interlink.client import JobsClient
    from interlink.config import load_config
    from interlink.store import Store, create_api_key

    config_path = folder / f"e2e-{time.monotonic_ns()}.yaml"
    config_path.write_text(_e2e_config(database, sandbox))
    store = Store.open(load_config(config_path).database)
    key = create_api_key(store.engine, "bench", "write").secret
    store.close()
    port = free_port()
    children = [
        subprocess.Popen(
            _interlink("serve", "-c", str(config_path), "--no-worker", "--port", str(port)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    children += [
        subprocess.Popen(
            _interlink("worker", "-c", str(config_path), "--concurrency", "4"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    try:
        wait_for_port(port)
        time.sleep(1.5)  # the workers' start-up (imports) is not what is measured
        with JobsClient(f"http://127.0.0.1:{port}", key) as client:
            submitted = [
                client.submit_job(f"p{n % E2E_PIPELINES}", full_refresh=True)["job_id"]
                for n in range(jobs)
            ]
            finished: list[dict[str, Any]] = []
            for job_id in submitted:
                done = client.wait_for_job(
                    job_id, timeout=600, poll_interval=0.02, max_interval=0.1
                )
                if done["status"] != "completed":
                    raise RuntimeError(f"job {job_id} ended {done['status']}: {done['error']}")
                finished.append(done)
        latencies = sorted(job["finished_at"] - job["created_at"] for job in finished)
        elapsed = max(job["finished_at"] for job in finished) - min(
            job["created_at"] for job in finished
        )
    finally:
        _stop(children)
    reference = _reference_runs(config_path, jobs)
    return {
        "jobs_per_s": jobs / elapsed,
        "records_per_s": jobs * records / elapsed,
        "p50": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "reference_jobs_per_s": jobs / reference,
    }


def run_e2e(args: argparse.Namespace, folder: Path, databases: list[tuple[str, str]]) -> None:
    from _local_server import free_port, wait_for_port

    port = free_port()
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(HERE.parent)!r}); "
            f"from jobs import _serve_sandbox; _serve_sandbox({port}, {args.records})",
        ]
    )
    try:
        wait_for_port(port)
        print()
        print(
            f"pipeline jobs end to end: {args.pipeline_jobs} jobs over {E2E_PIPELINES} "
            f"pipelines, {args.records:,} customers each (pages of 500), submitted through "
            "the API and waited for; reference: the same runs in one process, no queue"
        )
        header = (
            f"{'backend':<11} {'workers':>7} {'jobs/s':>8} {'records/s':>10} {'p50 s':>7} "
            f"{'p95 s':>7} {'in-process jobs/s':>18} {'ratio':>6}"
        )
        print(header)
        print("-" * len(header))
        for label, database_factory in databases:
            for workers in [int(n) for n in args.workers.split(",")]:
                database = database_factory() if callable(database_factory) else database_factory
                got = measure_e2e(
                    database,
                    f"http://127.0.0.1:{port}",
                    folder,
                    args.pipeline_jobs,
                    workers,
                    args.records,
                )
                print(
                    f"{label:<11} {workers:>7} {got['jobs_per_s']:>8.1f} "
                    f"{got['records_per_s']:>10,.0f} {got['p50']:>7.2f} {got['p95']:>7.2f} "
                    f"{got['reference_jobs_per_s']:>18.1f} "
                    f"{got['jobs_per_s'] / got['reference_jobs_per_s']:>5.2f}x",
                    flush=True,
                )
    finally:
        sandbox.terminate()
        sandbox.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5000, help="jobs drained per round")
    parser.add_argument("--steady-jobs", type=int, default=10_000, help="jobs per steady round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="worker processes, comma-separated")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs at once per worker")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=os.environ.get("INTERLINK_TEST_POSTGRES_URL"))
    parser.add_argument("--durability", default="normal", choices=["normal", "full"])
    parser.add_argument("--pipeline-jobs", type=int, default=40, help="e2e pipeline jobs")
    parser.add_argument("--records", type=int, default=2000, help="customers per e2e run")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="PostgreSQL drains: ANALYZE every contender's tables after filling them",
    )
    parser.add_argument("--no-e2e", action="store_true", help="skip the pipeline jobs")
    parser.add_argument("--no-noop", action="store_true", help="skip the no-op jobs")
    parser.add_argument("--child", nargs=2, metavar=("ROLE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        CHILDREN[args.child[0]](json.loads(args.child[1]))
        return

    import sqlalchemy

    folder = Path(tempfile.mkdtemp(prefix="interlink-bench-jobs-"))
    pairs: list[tuple[str, Backend, Backend]] = []
    backends = args.backends.split(",")
    if "sqlite" in backends:
        pairs.append(
            (
                "sqlite",
                InterlinkSqlite(folder, args.durability),
                BareSqlite(folder, args.durability),
            )
        )
    if "postgresql" in backends:
        if not args.postgres:
            print("postgresql skipped: give --postgres URL or INTERLINK_TEST_POSTGRES_URL")
        else:
            pairs.append(
                ("postgresql", InterlinkPostgres(args.postgres), ProcrastinateAlone(args.postgres))
            )
    worker_counts = [int(n) for n in args.workers.split(",")]
    print(
        f"# jobs: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, SQLAlchemy "
        f"{sqlalchemy.__version__}; drain {args.jobs:,}, steady {args.steady_jobs:,}; "
        f"concurrency {args.concurrency} per worker; durability {args.durability}; "
        f"median of {args.rounds} rounds"
        + ("; tables analyzed after each fill" if args.analyze else "")
    )
    header = (
        f"{'backend':<11} {'mode':<7} {'workers':>7} {'contender':<26} {'jobs/s':>9} {'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for label, ours, baseline in [] if args.no_noop else pairs:
        for mode in ("drain", "steady"):
            jobs = args.jobs if mode == "drain" else args.steady_jobs
            for workers in worker_counts:
                ours_rates: list[float] = []
                base_rates: list[float] = []
                for _ in range(args.rounds):  # interleaved, so drift hits both alike
                    for backend, rates in ((ours, ours_rates), (baseline, base_rates)):
                        rates.append(
                            measure(backend, mode, jobs, workers, args.concurrency, args.analyze)
                        )
                ours_rate = statistics.median(ours_rates)
                base_rate = statistics.median(base_rates)
                for contender, rate, rates in (
                    (ours.name, ours_rate, ours_rates),
                    (baseline.name, base_rate, base_rates),
                ):
                    spread = f"  ({min(rates):,.0f}-{max(rates):,.0f})"
                    ratio = f"{rate / base_rate:>6.2f}x"
                    print(
                        f"{label:<11} {mode:<7} {workers:>7} {contender:<26} "
                        f"{rate:>9,.0f} {ratio}{spread}",
                        flush=True,
                    )
    if not args.no_e2e:
        databases: list[tuple[str, Any]] = []
        if "sqlite" in backends:
            databases.append(
                ("sqlite", lambda: f"sqlite:///{folder / f'e2e-{time.monotonic_ns()}.db'}")
            )
        if "postgresql" in backends and args.postgres:
            databases.append(
                ("postgresql", lambda: _fresh_database(args.postgres, "interlink_bench_e2e"))
            )
        run_e2e(args, folder, databases)


if __name__ == "__main__":
    main()
