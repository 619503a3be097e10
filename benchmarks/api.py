"""Authenticated, rate-limited job reads per second against a bare FastAPI route, in one run.

Two servers, each in a process of its own on 127.0.0.1, on one SQLite file made for the run:

  bare       a FastAPI app with one sync route, `GET /bare/{id}`, that reads the job's row
             from the same file (a thread-local sqlite3 connection, as the queue reads) and
             answers it as JSON: what FastAPI, uvicorn and SQLite reach on this machine
  interlink  `interlink serve --no-worker` on that file: `GET /api/v1/jobs/{id}` with an
             API key (`Authorization: Bearer`), through every middleware, the key check
             and the per-key rate limit (`server.rate_limits.default` set so high that no
             request is refused: every one still spends from its bucket)

Both run uvicorn as `interlink serve` does (asyncio loop, httptools when installed, access
log off). Each is probed once (must answer 200), warmed for 2 s, then loaded for
`--seconds` by Debian's `wrk` (`--threads` threads, `--connections` keep-alive
connections, `--latency`). Targets alternate for `--rounds` rounds; the best round of
each is reported with its p50 and p99, and the ratio interlink / bare. wrk's own CPU is
printed as a share of one core: near 100% would mean the generator is the bottleneck.

Target (issue 16, section 3): interlink >= 0.5x bare requests/s, p99 < 25 ms at 16
connections.

    .venv/bin/python benchmarks/api.py [--seconds 10] [--connections 16] [--threads 1]
        [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _local_server import free_port, wait_for_port

_BARE_APP = """
import sqlite3, threading
from fastapi import FastAPI, HTTPException

DATABASE = {database!r}
app = FastAPI()
local = threading.local()


def connection() -> sqlite3.Connection:
    found = getattr(local, "connection", None)
    if found is None:
        found = local.connection = sqlite3.connect(DATABASE, check_same_thread=False)
        found.row_factory = sqlite3.Row
    return found


@app.get("/bare/{{job_id}}")
def bare(job_id: int) -> dict:
    row = connection().execute("SELECT * FROM interlink_jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise HTTPException(404)
    return {{"status": "success", "data": dict(row)}}
"""

_YAML = """\
database: sqlite:///{database}
server:
  rate_limits:
    default: 1000000000/min
"""


@dataclass
class Result:
    target: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    wrk_cpu: float


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(url: str, headers: list[str], args: argparse.Namespace, seconds: float) -> Result:
    command = [
        shutil.which("wrk") or "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds:g}s",
        "--latency",
    ]
    for header in headers:
        command += ["-H", header]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    shown = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / seconds
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", shown).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", shown).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", shown).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", shown)
    return Result("", rate, p50, p99, int(bad.group(1)) if bad else 0, cpu)


def _probe(url: str, headers: list[str]) -> None:
    import httpx

    sent = dict(header.split(": ", 1) for header in headers)
    answer = httpx.get(url, headers=sent, timeout=10)
    if answer.status_code != 200:
        raise RuntimeError(f"probe {url} answered {answer.status_code}: {answer.text[:300]}")


def _prepare(folder: Path) -> tuple[Path, str, int]:
    from interlink.config import InterlinkConfig
    from interlink.jobs import JobSpec, open_queue
    from interlink.store import Store, create_api_key

    database = folder / "bench.db"
    config_path = folder / "interlink.yaml"
    config_path.write_text(_YAML.format(database=database))
    config = InterlinkConfig.model_validate(
        {"database": f"sqlite:///{database}", "server": {"rate_limits": {"default": "1/s"}}}
    )
    store = Store.open(config.database)
    queue = open_queue(config, store)
    job = queue.enqueue(JobSpec("noop"))
    secret = create_api_key(store.engine, "bench", "read").secret
    queue.close()
    store.close()
    return config_path, secret, job.id


def _start(command: list[str], port: int, cwd: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port)
    except RuntimeError:
        process.kill()
        raise
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk)")
    python = sys.executable
    http = "httptools" if _installed("httptools") else "h11"
    best: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="interlink-api-bench-") as name:
        folder = Path(name)
        config_path, secret, job_id = _prepare(folder)
        (folder / "bare_app.py").write_text(_BARE_APP.format(database=str(folder / "bench.db")))
        targets = {
            "bare": (
                lambda port: [
                    python, "-m", "uvicorn", "bare_app:app", "--port", str(port),
                    "--log-level", "warning", "--no-access-log", "--http", http,
                    "--ws", "none",
                ],
                "/bare/{id}",
                [],
            ),
            "interlink": (
                lambda port: [
                    str(Path(python).parent / "interlink"), "serve", "--no-worker", "--config",
                    str(config_path), "--port", str(port), "--log-level", "warning",
                ],
                "/api/v1/jobs/{id}",
                [f"Authorization: Bearer {secret}"],
            ),
        }  # fmt: skip
        for round_ in range(args.rounds):
            for target, (command, path, headers) in targets.items():
                port = free_port()
                process = _start(command(port), port, folder)
                try:
                    url = f"http://127.0.0.1:{port}{path.format(id=job_id)}"
                    _probe(url, headers)
                    _wrk(url, headers, args, 2.0)
                    result = _wrk(url, headers, args, args.seconds)
                finally:
                    _stop(process)
                result.target = target
                if not args.json:
                    print(
                        f"round {round_ + 1} {target:<10} {result.requests_per_s:>9.0f} req/s  "
                        f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                        f"non-2xx {result.non_2xx}  wrk cpu {result.wrk_cpu:.0%}",
                        flush=True,
                    )
                if target not in best or result.requests_per_s > best[target].requests_per_s:
                    best[target] = result
    ratio = best["interlink"].requests_per_s / best["bare"].requests_per_s
    if args.json:
        print(json.dumps({"results": [asdict(r) for r in best.values()], "ratio": ratio}))
    else:
        print(f"\nbest of {args.rounds} rounds, {args.connections} connections, {http}:")
        for result in best.values():
            print(
                f"  {result.target:<10} {result.requests_per_s:>9.0f} req/s  "
                f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
            )
        print(f"  ratio interlink / bare: {ratio:.2f}x (target >= 0.5x, p99 < 25 ms)")
    worst = best["interlink"]
    return 0 if worst.non_2xx == 0 and best["bare"].non_2xx == 0 else 1


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
