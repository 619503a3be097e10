"""Accepted webhook deliveries per second, and their latency, against a bare endpoint.

Every target is a server in a process of its own, started by this script on 127.0.0.1,
timed from spawn until it answers (start s), sent one signed delivery (the probe: it must
be answered 202, or 200 by the bare endpoint), loaded for `--seconds` by one load generator
with `--connections` keep-alive connections, then stopped by its PID (SIGINT). Each request
is a distinct delivery: a 1 KiB JSON body carrying its own id, with Standard Webhooks
headers (webhook-id, webhook-timestamp, webhook-signature) signed in advance with
`interlink.webhooks.sign` (no signing while the clock runs). Whole process: the server's
CPU while loaded (100% is one core), the generator's (its start included), the server's
peak RSS (VmHWM).

Targets, in one run:
  bare          a minimal ASGI app on uvicorn that reads the body and answers 200: what
                uvicorn and the load generator reach on this machine (the ratio's base)
  sqlite        `interlink serve --no-worker` on a fresh SQLite file (`jobs.durability`
                from `--durability`; one row per value) with a `webhooks:` source `bench`
  postgresql    the same on a database created for the run and dropped after it (needs
                `--postgres URL` or INTERLINK_TEST_POSTGRES_URL)
  hand-built    (only when named in --targets) a receiver as MEASURED.md's were built: the
                same verify, then one INSERT into SQLite (WAL, NORMAL) committed per
                request; 202 new, 200 duplicate. A reference, and a stand-in for the route.
  bare-httptools  (only when named) the bare endpoint on uvicorn's httptools parser, where
                the httptools package is installed, whatever --http says

Every server runs uvicorn as `interlink serve` does: asyncio's loop, no WebSockets, no
proxy headers, TCP_NODELAY, access log off (`--log-level warning`), HTTP/1.1 on the parser
`--http` names: `auto` (the default) is what `interlink serve` picks, httptools when it is
installed; `h11,httptools` runs every target on each (`interlink serve --http ...`; the bare
endpoint and the hand-built receiver on uvicorn's own protocol class for that parser), and
"x bare" is then against the bare endpoint on the same parser. The worker is off: what is
measured is acceptance (verified, stored and enqueued before the answer). A delivery
counts when it is answered 202 (200 by the bare endpoint). After each run the stored
deliveries are counted: every 202 must be there ("lost" 0, or the run exits 1). wrk stops
with up to one request per connection unanswered, which the server may have stored ("in
flight"), so its count is exact to within `--connections`; the asyncio generator waits for
every answer, so its count is exact.

The load generator is wrk (C, `apt-get install wrk`) with a generated Lua script when wrk
is on PATH, otherwise a lean asyncio generator in its own process (raw sockets, pre-signed
requests). Latency is per request, from the write of the request to its whole answer.

Targets (issue 12, from hand-built receivers in MEASURED.md "Webhook ingest"): >= 8,000
accepted deliveries/s on SQLite, >= 4,000/s on PostgreSQL, p99 < 25 ms at 16 connections.

    .venv/bin/python benchmarks/webhooks.py [--seconds 10] [--connections 16] [--rounds 1]
        [--targets bare,sqlite,postgresql[,hand-built,bare-httptools]] [--postgres URL]
        [--durability normal[,full]] [--http auto|h11|httptools|h11,httptools]
        [--generator auto|wrk|python] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import importlib.util
import json
import os
import platform
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SOURCE = "bench"
PATH = f"/api/v1/webhooks/{SOURCE}"
HEALTH = "/api/v1/health"
SECRET_ENV = "INTERLINK_BENCH_WEBHOOK_SECRET"
# A fixed benchmark key: nothing outside this run ever trusts it.
SECRET = "whsec_" + base64.b64encode(b"interlink-webhook-benchmark-key!").decode()
TOLERANCE = "1h"  # a long run's pre-signed timestamps stay valid (the default is 5 min)
TARGET_RATE = {"sqlite": 8000.0, "postgresql": 4000.0}
TARGET_P99_MS = 25.0

# One delivery's body: HEAD + its id + TAIL, exactly 1,024 bytes for an id of ID_LENGTH.
ID_LENGTH = 25  # "msg_" + 8 hex + "_" + 12 digits
HEAD = b'{"type":"customer.updated","id":"'
_DATA = (
    b'","data":{"object":"customer","email":"ada.lovelace@example.com","first_name":"Ada",'
    b'"last_name":"Lovelace","company":"Analytical Engines Ltd","city":"London",'
    b'"tags":["vip","newsletter"],"notes":"'
)
TAIL = _DATA + b"x" * (1024 - len(HEAD) - ID_LENGTH - len(_DATA) - 3) + b'"}}'
BODY_LENGTH = len(HEAD) + ID_LENGTH + len(TAIL)
assert BODY_LENGTH == 1024


# -- the servers (children) ------------------------------------------------------------------


def _listen(port: int) -> socket.socket:
    # As `interlink serve` binds (cli/_serve.py): IPPROTO_TCP, so asyncio sets TCP_NODELAY.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.set_inheritable(True)
    return sock


def _run_uvicorn(app: Any, port: int, http: str = "h11") -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        http=http,
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run(sockets=[_listen(port)])


async def _read_body(receive: Any) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _child_bare(spec: dict[str, Any]) -> None:
    answer = b'{"status":"success"}'

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _read_body(receive)
        await _answer(send, 200, answer)

    _run_uvicorn(app, spec["port"], spec.get("http", "h11"))


def _child_hand_built(spec: dict[str, Any]) -> None:
    from interlink.config import StandardWebhookConfig
    from interlink.errors import SignatureError
    from interlink.webhooks import verify

    config = StandardWebhookConfig.model_validate(
        {"scheme": "standard", "secret": os.environ[SECRET_ENV], "tolerance": TOLERANCE}
    )
    db = _hand_built_db(spec["db"])
    # Tests only: acknowledge every n-th delivery without storing it, so that the
    # benchmark's check for lost deliveries is seen to fire.
    drop_every = int(spec.get("drop_every") or 0)
    seen = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await _read_body(receive)
        if scope["method"] != "POST":
            await _answer(send, 200, b'{"status":"success"}')
            return
        try:
            verified = verify(config, scope["headers"], body, now=time.time())
        except SignatureError as exc:
            await _answer(send, exc.status, b'{"status":"error"}')
            return
        nonlocal seen
        seen += 1
        if drop_every and seen % drop_every == 0:
            await _answer(send, 202, b'{"status":"success","data":{"duplicate":false}}')
            return
        try:
            db.execute(
                "INSERT INTO deliveries (source, delivery_id, event_type, received_at, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (SOURCE, verified.delivery_id, verified.event_type, time.time(), body),
            )
        except sqlite3.IntegrityError:
            await _answer(send, 200, b'{"status":"success","data":{"duplicate":true}}')
            return
        await _answer(send, 202, b'{"status":"success","data":{"duplicate":false}}')

    _run_uvicorn(app, spec["port"], spec.get("http", "h11"))


def _hand_built_db(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)  # autocommit: a commit per INSERT
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS deliveries (id INTEGER PRIMARY KEY, source TEXT NOT NULL, "
        "delivery_id TEXT NOT NULL, event_type TEXT, received_at REAL NOT NULL, "
        "body BLOB NOT NULL, UNIQUE (source, delivery_id))"
    )
    return db


# -- the Python load generator (child) -------------------------------------------------------


def _read_pool(path: str) -> list[tuple[bytes, bytes]]:
    with open(path, "rb") as pool:
        return [tuple(line.split()) for line in pool]  # type: ignore[misc]


class _Run:
    """What the connections share: the next delivery, the clock, and what came back."""

    def __init__(self, spec: dict[str, Any], pool: list[tuple[bytes, bytes]]) -> None:
        self.pool = pool
        self.next = 0
        self.wraps = 0
        self.going = True
        self.statuses: dict[int, int] = {}
        self.latencies: list[int] = []
        self.last = 0
        self.prefix = (
            f"POST {spec['path']} HTTP/1.1\r\nHost: 127.0.0.1:{spec['port']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {BODY_LENGTH}\r\n"
            f"webhook-timestamp: {spec['timestamp']}\r\nwebhook-id: "
        ).encode()

    def request(self) -> bytes:
        if self.next == len(self.pool):
            self.next = 0
            self.wraps += 1
        delivery_id, signature = self.pool[self.next]
        self.next += 1
        return b"".join(
            (
                self.prefix,
                delivery_id,
                b"\r\nwebhook-signature: ",
                signature,
                b"\r\n\r\n",
                HEAD,
                delivery_id,
                TAIL,
            )
        )


class _Sender(asyncio.Protocol):
    """One keep-alive connection: send a request, read its whole answer, send the next."""

    def __init__(self, run: _Run, finished: asyncio.Future[None]) -> None:
        self.run = run
        self.finished = finished
        self.buffer = bytearray()
        self.sent_at = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter_ns()
        self.transport.write(self.run.request())

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._fail(RuntimeError(f"an answer without Content-Length: {head[:200]!r}"))
                return
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop > 0 else len(head)])
            total = end + 4 + length
            if len(buffer) < total:
                return
            now = time.perf_counter_ns()
            status = int(buffer[9:12])
            del buffer[:total]
            run = self.run
            run.statuses[status] = run.statuses.get(status, 0) + 1
            run.latencies.append(now - self.sent_at)
            run.last = now
            if run.going:
                self._send()
            elif not self.finished.done():
                self.finished.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self._fail(exc or RuntimeError("the server closed a connection"))

    def _fail(self, exc: BaseException) -> None:
        if not self.finished.done():
            self.finished.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


async def _generate(spec: dict[str, Any]) -> dict[str, Any]:
    run = _Run(spec, _read_pool(spec["pool"]))
    loop = asyncio.get_running_loop()
    finished = [loop.create_future() for _ in range(spec["connections"])]
    started_cpu = time.process_time()
    started = time.perf_counter_ns()
    transports = []
    for future in finished:
        transport, _ = await loop.create_connection(
            functools.partial(_Sender, run, future), "127.0.0.1", spec["port"]
        )
        transports.append(transport)
    await asyncio.sleep(spec["seconds"])
    run.going = False
    try:
        await asyncio.wait_for(asyncio.gather(*finished), timeout=30)
    finally:
        for transport in transports:
            transport.close()
    duration = (run.last - started) / 1e9
    latencies = sorted(run.latencies)
    return {
        "requests": len(latencies),
        "duration_s": duration,
        "statuses": {str(k): v for k, v in run.statuses.items()},
        "p50_ms": _percentile(latencies, 50) / 1e6,
        "p99_ms": _percentile(latencies, 99) / 1e6,
        "max_ms": latencies[-1] / 1e6 if latencies else 0.0,
        "errors": 0,
        "wraps": run.wraps,
        "unanswered": 0,
        "cpu_s": time.process_time() - started_cpu,
    }


def _percentile(ordered: list[int], percent: float) -> float:
    if not ordered:
        return 0.0
    return float(ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))])


def _child_generator(spec: dict[str, Any]) -> None:
    print(json.dumps(asyncio.run(_generate(spec))), flush=True)


CHILDREN = {"bare": _child_bare, "hand-built": _child_hand_built, "generator": _child_generator}


# -- wrk ---------------------------------------------------------------------------------------

# Each wrk thread takes every n-th line of the pool (its own deliveries, none shared) and
# counts answers by status; done() sums the threads and prints one JSON line.
_WRK_SCRIPT = """\
-- Generated by benchmarks/webhooks.py: distinct pre-signed Standard Webhooks deliveries.
local head = [==[@HEAD@]==]
local tail = [==[@TAIL@]==]
local threads = {}
local made = 0

function setup(thread)
  thread:set("tid", made)
  made = made + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(args[2])
  ids, sigs, n, pos, wraps = {}, {}, 0, 0, 0
  c202, c200, cother = 0, 0, 0
  local k = 0
  for line in io.lines(args[1]) do
    if k % nthreads == tid then
      local id, sig = line:match("^(%S+) (%S+)$")
      n = n + 1
      ids[n] = id
      sigs[n] = sig
    end
    k = k + 1
  end
  fields = {["Content-Type"] = "application/json", ["webhook-timestamp"] = args[3]}
end

function request()
  pos = pos + 1
  if pos > n then
    pos = 1
    wraps = wraps + 1
  end
  local id = ids[pos]
  fields["webhook-id"] = id
  fields["webhook-signature"] = sigs[pos]
  return wrk.format("POST", "@PATH@", fields, head .. id .. tail)
end

function response(status, answer_headers, body)
  if status == 202 then
    c202 = c202 + 1
  elseif status == 200 then
    c200 = c200 + 1
  else
    cother = cother + 1
  end
end

function done(summary, latency, requests)
  local a, b, o, w = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("c202")
    b = b + thread:get("c200")
    o = o + thread:get("cother")
    w = w + thread:get("wraps")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests":%.0f,"duration_us":%.0f,"p50_us":%.0f,"p99_us":%.0f,' ..
    '"max_us":%.0f,"s202":%.0f,"s200":%.0f,"other":%.0f,"wraps":%.0f,' ..
    '"connect":%.0f,"read":%.0f,"write":%.0f,"timeout":%.0f}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, a, b, o, w, e.connect, e.read, e.write, e.timeout))
end
"""


def _wrk_script(folder: Path) -> Path:
    script = folder / "webhooks.lua"
    text = (
        _WRK_SCRIPT.replace("@HEAD@", HEAD.decode())
        .replace("@TAIL@", TAIL.decode())
        .replace("@PATH@", PATH)
    )
    script.write_text(text)
    return script


def _wrk_version(wrk: str) -> str:
    shown = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    words = (shown.stdout or shown.stderr).split()
    # "wrk debian/4.1.0-3+b2 [epoll] ...": the upstream version
    return words[1].rpartition("/")[2].partition("-")[0] if len(words) > 1 else "?"


# -- the parent ----------------------------------------------------------------------------


@dataclass
class Pool:
    """Pre-signed deliveries on disk, one `id signature` line each, all at `timestamp`."""

    path: Path
    size: int
    timestamp: int


def make_pool(folder: Path, size: int) -> Pool:
    """`size` distinct deliveries signed with `interlink.webhooks.sign` (~7 us each)."""
    from interlink.config import StandardWebhookConfig
    from interlink.webhooks import sign

    config = StandardWebhookConfig.model_validate({"scheme": "standard", "secret": SECRET})
    timestamp = int(time.time())
    tag = os.urandom(4).hex()
    path = folder / f"pool-{tag}.txt"
    lines = []
    for n in range(size):
        delivery_id = f"msg_{tag}_{n:012d}"
        body = HEAD + delivery_id.encode() + TAIL
        headers = sign(config, body, timestamp=timestamp, delivery_id=delivery_id)
        lines.append(f"{delivery_id} {headers['webhook-signature']}\n")
    path.write_text("".join(lines))
    return Pool(path, size, timestamp)


def _probe(port: int, pool: Pool) -> tuple[int, str]:
    """One signed delivery outside the pool: the answer's status and its first 300 chars."""
    import httpx

    from interlink.config import StandardWebhookConfig
    from interlink.webhooks import sign

    config = StandardWebhookConfig.model_validate({"scheme": "standard", "secret": SECRET})
    delivery_id = f"msg_probe_{os.urandom(6).hex()}"
    body = HEAD + delivery_id.encode() + TAIL
    headers = sign(config, body, timestamp=pool.timestamp, delivery_id=delivery_id)
    headers["Content-Type"] = "application/json"
    answer = httpx.post(f"http://127.0.0.1:{port}{PATH}", content=body, headers=headers)
    return answer.status_code, answer.text[:300]


@dataclass
class Round:
    """One target, one round: what the generator saw and what the server kept."""

    rate: float = 0.0
    """Deliveries answered 202 per second (200 for the bare endpoint)."""
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    requests: int = 0
    accepted: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    wraps: int = 0
    duration_s: float = 0.0
    startup_s: float = 0.0
    server_cpu_pct: float = 0.0
    generator_cpu_pct: float = 0.0
    server_cpu_s: float = 0.0
    peak_mib: float = 0.0
    stored: int | None = None
    lost: int | None = None
    in_flight: int | None = None
    error: str | None = None


class Target:
    """A server to load: how to start it, what a delivery's answer is, what it stored."""

    name = ""
    kind = ""
    ok_status = 202
    http = "h11"
    """The HTTP/1.1 parser the server runs on."""

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def setup(self, folder: Path) -> None: ...

    def stored(self) -> int | None:
        return None

    def cleanup(self) -> None: ...


def _child_command(role: str, spec: dict[str, Any]) -> list[str]:
    return [sys.executable, str(HERE), "--child", role, json.dumps(spec)]


class Bare(Target):
    kind = "bare"
    ok_status = 200

    def __init__(self, http: str = "h11", *, label: str = "") -> None:
        self.http = http
        self.name = f"bare endpoint{label}"

    @classmethod
    def httptools(cls) -> Bare:
        """The `bare-httptools` target: uvicorn's httptools parser whatever --http says."""
        bare = cls("httptools", label=" httptools")
        bare.kind = "bare-httptools"
        return bare

    def command(self, port: int) -> list[str]:
        return _child_command("bare", {"port": port, "http": self.http})


class HandBuilt(Target):
    name = "hand-built sqlite"
    kind = "hand-built"

    def __init__(self, drop_every: int = 0, http: str = "h11", *, label: str = "") -> None:
        self.drop_every = drop_every
        self.http = http
        self.name = f"hand-built sqlite{label}"

    def setup(self, folder: Path) -> None:
        self.db = folder / f"hand-built-{time.monotonic_ns()}.db"

    def command(self, port: int) -> list[str]:
        spec = {"port": port, "db": str(self.db), "drop_every": self.drop_every, "http": self.http}
        return _child_command("hand-built", spec)

    def stored(self) -> int:
        with sqlite3.connect(self.db) as db:
            return int(db.execute("SELECT count(*) FROM deliveries").fetchone()[0])


_COUNT = "SELECT count(*) FROM interlink_webhook_deliveries WHERE source = 'bench'"


class _Interlink(Target):
    database = ""
    processes = 1

    def command(self, port: int) -> list[str]:
        return [
            sys.executable,
            "-c",
            "from interlink.__main__ import main; main()",
            "serve",
            "--config",
            str(self.config),
            "--port",
            str(port),
            "--no-worker",
            "--log-level",
            "warning",
            "--http",
            self.http,
            "--processes",
            str(self.processes),
        ]

    def write_config(self, folder: Path, extra: str = "") -> None:
        self.config = folder / f"interlink-{time.monotonic_ns()}.yaml"
        self.config.write_text(
            f"database: {self.database}\n{extra}"
            f"webhooks:\n  {SOURCE}:\n    scheme: standard\n"
            f"    secret: ${{{SECRET_ENV}}}\n    tolerance: {TOLERANCE}\n"
        )


class InterlinkSqlite(_Interlink):
    kind = "sqlite"

    def __init__(self, durability: str, http: str = "h11", *, label: str = "") -> None:
        self.durability = durability
        self.http = http
        self.name = f"interlink sqlite {durability}{label}"

    def setup(self, folder: Path) -> None:
        self.path = folder / f"interlink-{time.monotonic_ns()}.db"
        self.database = f"sqlite:///{self.path}"
        self.write_config(folder, f"jobs:\n  durability: {self.durability}\n")

    def stored(self) -> int:
        with sqlite3.connect(self.path) as db:
            return int(db.execute(_COUNT).fetchone()[0])


class InterlinkPostgres(_Interlink):
    name = "interlink postgresql"
    kind = "postgresql"

    def __init__(self, admin_url: str, http: str = "h11", *, label: str = "") -> None:
        self.admin_url = admin_url
        self.http = http
        self.name = f"interlink postgresql{label}"
        self.name_in_server = f"interlink_bench_webhooks_{os.getpid()}"

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)

    def setup(self, folder: Path) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name_in_server} WITH (FORCE)")
        self._admin(f"CREATE DATABASE {self.name_in_server}")
        self.database = f"{self.admin_url.rpartition('/')[0]}/{self.name_in_server}"
        self.write_config(folder)

    def stored(self) -> int:
        import psycopg

        with psycopg.connect(self.database) as conn:
            row = conn.execute(_COUNT).fetchone()
            return int(row[0]) if row else 0

    def cleanup(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name_in_server} WITH (FORCE)")

    def version(self) -> str:
        import psycopg

        with psycopg.connect(self.admin_url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
        shown = str(version[0]).split()[0] if version else "?"
        return f"{shown} (fsync {fsync[0] if fsync else '?'})"


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    request = f"GET {HEALTH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(request)
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}): {_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer {HEALTH} in {timeout:g} s")
        time.sleep(0.02)


def _tail(log: Path) -> str:
    text = log.read_text(errors="replace").strip() if log.exists() else ""
    return text[-1500:] or "(no output)"


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (the server processes of `interlink serve --processes`)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _peak_mib(pid: int) -> float:
    """The peak RSS so far of the process and its children, summed (VmHWM; `ru_maxrss`
    would count the parent's memory at the fork, before the exec)."""
    total = 0.0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def _stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> float:
    """SIGINT the process (uvicorn's graceful stop), SIGKILL after `timeout`; its whole
    life's CPU seconds (0 when it had already exited)."""
    if process.returncode is not None:
        return 0.0
    process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            _, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.02)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _cpu_seconds(pid: int) -> float:
    """User + system CPU so far of the process and its children, from /proc/PID/stat
    (fields 14 and 15)."""
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(
    wrk: str, script: Path, port: int, pool: Pool, args: argparse.Namespace
) -> dict[str, Any]:
    threads = max(1, min(args.threads, args.connections))
    command = [
        wrk,
        f"-t{threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{PATH}",
        "--",
        str(pool.path),
        str(threads),
        str(pool.timestamp),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=args.seconds + 120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError("wrk did not finish") from None
    lines = [line for line in out.decode().splitlines() if line.startswith("WRK-JSON ")]
    if process.returncode != 0 or not lines:
        shown = (out + err).decode(errors="replace")[-1500:]
        raise RuntimeError(f"wrk failed (exit {process.returncode}): {shown}")
    got = json.loads(lines[0].removeprefix("WRK-JSON "))
    # wrk's CPU: it is the only child reaped in between.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "requests": int(got["requests"]),
        "duration_s": got["duration_us"] / 1e6,
        "statuses": {"202": int(got["s202"]), "200": int(got["s200"]), "other": int(got["other"])},
        "p50_ms": got["p50_us"] / 1000,
        "p99_ms": got["p99_us"] / 1000,
        "max_ms": got["max_us"] / 1000,
        "errors": int(got["connect"] + got["read"] + got["write"]),
        "unanswered": int(got["timeout"]),
        "wraps": int(got["wraps"]),
        "cpu_s": cpu,
    }


def run_python(port: int, pool: Pool, args: argparse.Namespace) -> dict[str, Any]:
    spec = {
        "port": port,
        "path": PATH,
        "pool": str(pool.path),
        "timestamp": pool.timestamp,
        "seconds": args.seconds,
        "connections": args.connections,
    }
    process = subprocess.run(
        _child_command("generator", spec),
        capture_output=True,
        text=True,
        timeout=args.seconds + 120,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(f"the load generator failed: {process.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(process.stdout)
    return result


def measure(target: Target, pool: Pool, folder: Path, args: argparse.Namespace) -> Round:
    """Start the target, probe it, load it, stop it, count what it stored."""
    from _local_server import free_port

    round_ = Round()
    target.setup(folder)
    port = free_port()
    log = folder / f"{target.kind}-{port}.log"
    env = {**os.environ, SECRET_ENV: SECRET}
    started = time.perf_counter()
    with log.open("wb") as output:
        process = subprocess.Popen(
            target.command(port), stdout=output, stderr=subprocess.STDOUT, env=env
        )
    try:
        _wait_ready(port, process, log, timeout=60)
        round_.startup_s = time.perf_counter() - started
        status, text = _probe(port, pool)
        if status != target.ok_status:
            raise RuntimeError(
                f"POST {PATH} answered {status}, not {target.ok_status}: {text}"
                + (" (is the webhook route there?)" if status == 404 else "")
            )
        before = _cpu_seconds(process.pid)
        if args.generator == "wrk":
            got = run_wrk(args.wrk, args.wrk_script, port, pool, args)
        else:
            got = run_python(port, pool, args)
        round_.server_cpu_s = _cpu_seconds(process.pid) - before
        round_.peak_mib = _peak_mib(process.pid)
    except Exception as exc:  # one target's failure is reported in its row
        round_.error = str(exc)
        got = None
    finally:
        _stop(process)
    try:
        if got is not None:
            _fill(round_, target, got)
            stored = target.stored()
            if stored is not None:
                answered = round_.accepted + 1  # the probe
                round_.stored = stored
                round_.lost = max(0, answered - stored)
                round_.in_flight = max(0, stored - answered)
                if round_.lost:
                    round_.error = f"{round_.lost} deliveries answered 202 are not stored"
                elif round_.in_flight > args.connections + round_.errors:
                    round_.error = (
                        f"{round_.in_flight} more deliveries stored than answered 202 "
                        f"(at most {args.connections} can be in flight)"
                    )
    finally:
        target.cleanup()
    return round_


def _fill(round_: Round, target: Target, got: dict[str, Any]) -> None:
    duration = got["duration_s"] or 1e-9
    round_.requests = got["requests"]
    round_.statuses = got["statuses"]
    round_.accepted = int(got["statuses"].get(str(target.ok_status), 0))
    round_.rate = round_.accepted / duration
    round_.p50_ms = got["p50_ms"]
    round_.p99_ms = got["p99_ms"]
    round_.max_ms = got["max_ms"]
    round_.errors = got["errors"] + got["unanswered"]
    round_.wraps = got["wraps"]
    round_.duration_s = duration
    round_.server_cpu_pct = 100 * round_.server_cpu_s / duration
    round_.generator_cpu_pct = 100 * got["cpu_s"] / duration
    others = round_.requests - round_.accepted
    if round_.errors and round_.error is None:
        round_.error = f"{round_.errors:,} requests failed on the socket or timed out (10 s)"
    if others and round_.error is None:
        shown = ", ".join(f"{k}: {v:,}" for k, v in sorted(got["statuses"].items()) if v)
        if target.ok_status == 200:
            round_.error = f"answers other than {target.ok_status}: {shown}"
        elif int(got["statuses"].get("200", 0)) != others or not round_.wraps:
            round_.error = f"answers other than 202: {shown}"


# -- report --------------------------------------------------------------------------------


def _median_round(rounds: list[Round]) -> Round:
    good = [r for r in rounds if r.error is None] or rounds
    ordered = sorted(good, key=lambda r: r.rate)
    return ordered[(len(ordered) - 1) // 2]


def summarize(results: list[tuple[Target, list[Round]]], facts: dict[str, Any]) -> dict[str, Any]:
    bares = {t.http: _median_round(r) for t, r in reversed(results) if t.kind == "bare"}
    first_bare = next((_median_round(r) for t, r in results if t.kind == "bare"), None)
    rows = []
    for target, rounds in results:
        chosen = _median_round(rounds)
        bare = bares.get(target.http, first_bare)
        row: dict[str, Any] = {
            "target": target.name,
            "kind": target.kind,
            "http": target.http,
            **asdict(chosen),
        }
        row["rates"] = [r.rate for r in rounds]
        row["x_bare"] = chosen.rate / bare.rate if bare and bare.rate and chosen.rate else None
        goal = TARGET_RATE.get(target.kind)
        row["target_rate"] = goal
        row["x_target"] = chosen.rate / goal if goal and chosen.rate else None
        row["met"] = (
            None
            if goal is None
            else bool(
                chosen.error is None and chosen.rate >= goal and chosen.p99_ms < TARGET_P99_MS
            )
        )
        row["errors_in_rounds"] = [r.error for r in rounds if r.error]
        rows.append(row)
    return {**facts, "target_p99_ms": TARGET_P99_MS, "results": rows}


def _n(value: float | None, spec: str, width: int = 0) -> str:
    return format("-" if value is None else format(value, spec), f">{width}")


def print_table(summary: dict[str, Any]) -> None:
    postgres = summary.get("postgresql")
    parsers = ", ".join(summary["http"])
    print(
        f"# webhooks: {summary['machine']}, Python {summary['python']}; uvicorn "
        f"{summary['uvicorn']} ({parsers}; asyncio loop)"
    )
    print(
        f"# SQLite {summary['sqlite']}"
        + (f", PostgreSQL {postgres}" if postgres else "")
        + f"; {summary['date']}"
    )
    print(
        f"# {summary['generator']}, {summary['connections']} connections, "
        f"{summary['seconds']} s a target, median of {summary['rounds']} round(s)"
    )
    print(
        f"# 1 KiB JSON bodies, Standard Webhooks HMAC, {summary['pool']:,} distinct "
        "deliveries a round"
    )
    width = max([23, *(len(row["target"]) for row in summary["results"])])
    header = (
        f"{'target':<{width}} {'deliv/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'x bare':>7} "
        f"{'x target':>9} {'start s':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in summary["results"]:
        x_bare = "-" if row["x_bare"] is None else f"{row['x_bare']:.2f}x"
        if row["met"] is None:
            goal = "-"
        else:
            goal = f"{row['x_target'] or 0:.2f}x {'ok' if row['met'] else 'NO'}"
        print(
            f"{row['target']:<{width}} {row['rate']:>8,.0f} {row['p50_ms']:>7.2f} "
            f"{row['p99_ms']:>7.2f} {x_bare:>7} {goal:>9} "
            f"{row['startup_s']:>8.2f}"
        )
    print()
    header = (
        f"{'whole process':<{width}} {'srv %':>5} {'gen %':>5} {'MiB':>6} {'answered':>8} "
        f"{'other':>5} {'stored':>8} {'flight':>6} {'lost':>4}"
    )
    print(header)
    print("-" * len(header))
    for row in summary["results"]:
        others = row["requests"] - row["accepted"]
        print(
            f"{row['target']:<{width}} {row['server_cpu_pct']:>5.0f} "
            f"{row['generator_cpu_pct']:>5.0f} "
            f"{row['peak_mib']:>6.1f} {row['accepted']:>8,} {others:>5,} "
            f"{_n(row['stored'], ',', 8)} {_n(row['in_flight'], ',', 6)} "
            f"{_n(row['lost'], ',', 4)}"
        )
    print()
    for row in summary["results"]:
        name = row["target"]
        for error in row["errors_in_rounds"]:
            print(f"{name}: FAILED: {error}")
        if len(row["rates"]) > 1:
            low, high = min(row["rates"]), max(row["rates"])
            print(f"{name}: {low:,.0f}-{high:,.0f} deliveries/s over {len(row['rates'])} rounds")
        if row["wraps"]:
            print(f"{name}: the pool ran out {row['wraps']} time(s); raise --pool-rate")
        if row["met"] is not None:
            print(
                f"{name}: {row['rate']:,.0f}/s (>= {row['target_rate']:,.0f}), "
                f"p99 {row['p99_ms']:.1f} ms (< {TARGET_P99_MS:g}): "
                + ("ok" if row["met"] else "BELOW TARGET")
            )


# -- main ------------------------------------------------------------------------------------


def _targets(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Target]:
    known = ("bare", "sqlite", "postgresql", "hand-built", "bare-httptools")
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(known)}")
    targets: list[Target] = []
    parsers = args.parsers
    for name in names:
        if name == "bare-httptools":
            if args.httptools:
                targets.append(Bare.httptools())
            elif not args.json:
                print("bare-httptools skipped: the httptools package is not installed")
            continue
        if name == "postgresql" and not args.postgres:
            if not args.json:
                print("postgresql skipped: give --postgres URL or INTERLINK_TEST_POSTGRES_URL")
            continue
        for http in parsers:
            label = f" {http}" if len(parsers) > 1 else ""
            if name == "bare":
                targets.append(Bare(http, label=label))
            elif name == "hand-built":
                targets.append(HandBuilt(args.fault_drop_every, http, label=label))
            elif name == "sqlite":
                for durability in args.durability.split(","):
                    if durability not in ("normal", "full"):
                        parser.error(f"--durability takes normal and/or full; got {durability!r}")
                    for count in args.process_counts:
                        target = InterlinkSqlite(durability, http, label=label + _x(count))
                        target.processes = count
                        targets.append(target)
            else:
                for count in args.process_counts:
                    target = InterlinkPostgres(args.postgres, http, label=label + _x(count))
                    target.processes = count
                    targets.append(target)
    return targets


def _x(processes: int) -> str:
    """The label of a target served by `interlink serve --processes N` (N > 1)."""
    return f" x{processes}" if processes > 1 else ""


def _parsers(value: str, httptools: bool, parser: argparse.ArgumentParser) -> list[str]:
    """The parsers --http names, in order; `auto` is what `interlink serve` picks."""
    chosen: list[str] = []
    for name in (n.strip() for n in value.split(",") if n.strip()):
        if name == "auto":
            name = "httptools" if httptools else "h11"
        if name not in ("h11", "httptools"):
            parser.error(f"--http takes auto, h11 and/or httptools; got {name!r}")
        if name == "httptools" and not httptools:
            parser.error("--http httptools: the httptools package is not installed")
        if name not in chosen:
            chosen.append(name)
    return chosen or ["httptools" if httptools else "h11"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="load per target and round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="targets interleaved per round")
    parser.add_argument("--targets", default="bare,sqlite,postgresql")
    parser.add_argument("--postgres", default=os.environ.get("INTERLINK_TEST_POSTGRES_URL"))
    parser.add_argument("--durability", default="normal", help="sqlite rows: normal,full")
    parser.add_argument(
        "--http", default="auto", help="the HTTP/1.1 parsers: auto, h11, httptools, h11,httptools"
    )
    parser.add_argument(
        "--processes",
        default="1",
        help="interlink serve --processes: 1, 2 or 1,2 (a target each)",
    )
    parser.add_argument("--generator", default="auto", choices=["auto", "wrk", "python"])
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--pool-rate",
        type=int,
        default=20_000,
        help="distinct deliveries signed per second of load (the pool wraps beyond)",
    )
    parser.add_argument("--quick", action="store_true", help="a 2-second smoke run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--fault-drop-every", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, metavar=("ROLE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        CHILDREN[args.child[0]](json.loads(args.child[1]))
        return
    if args.quick:
        args.seconds, args.rounds, args.pool_rate = 2, 1, min(args.pool_rate, 10_000)
    if args.seconds < 1 or args.connections < 1 or args.rounds < 1:
        parser.error("--seconds, --connections and --rounds must be at least 1")

    args.wrk = shutil.which("wrk")
    if args.generator == "wrk" and not args.wrk:
        parser.error("--generator wrk: wrk is not on PATH (apt-get install wrk)")
    if args.generator == "auto":
        args.generator = "wrk" if args.wrk else "python"
    args.httptools = importlib.util.find_spec("httptools") is not None
    args.parsers = _parsers(args.http, args.httptools, parser)
    try:
        args.process_counts = sorted({int(n) for n in args.processes.split(",") if n.strip()})
    except ValueError:
        parser.error(f"--processes takes counts such as 1,2; got {args.processes!r}")
    if not args.process_counts or min(args.process_counts) < 1:
        parser.error(f"--processes takes counts of 1 or more; got {args.processes!r}")
    targets = _targets(args, parser)

    import uvicorn

    folder = Path(tempfile.mkdtemp(prefix="interlink-bench-webhooks-"))
    try:
        if args.generator == "wrk":
            args.wrk_script = _wrk_script(folder)
            threads = max(1, min(args.threads, args.connections))
            generator = f"wrk {_wrk_version(args.wrk)} ({threads} threads)"
        else:
            generator = "asyncio generator" + ("" if args.wrk else " (wrk not found)")
        postgres = next((t for t in targets if isinstance(t, InterlinkPostgres)), None)
        facts = {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "uvicorn": uvicorn.__version__,
            "http": args.parsers,
            "sqlite": sqlite3.sqlite_version,
            "postgresql": postgres.version() if postgres else None,
            "generator": generator,
            "connections": args.connections,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "pool": args.seconds * args.pool_rate,
        }
        runs: list[list[Round]] = [[] for _ in targets]
        for _ in range(args.rounds):
            # Signed afresh each round, so a long run's timestamps stay young.
            pool = make_pool(folder, args.seconds * args.pool_rate)
            for target, rounds in zip(targets, runs, strict=True):
                rounds.append(measure(target, pool, folder, args))
            pool.path.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    summary = summarize(list(zip(targets, runs, strict=True)), facts)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary)
    if any(row["errors_in_rounds"] for row in summary["results"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
