"""Every secret hunted in every output: the database and its WAL, the logs, the API answers.

Issue 11, proof of section 1. Realistic flows run against the sandbox with known secrets:
a bearer token, a query-string API key, a basic password, an OAuth2 client secret (and the
access tokens the sandbox's token endpoint issues for it), a wrong API key, and an
interlink API key. The flows:

- `interlink run` as a subprocess, with every logger at DEBUG, for pipelines into SQLite
  (next_url and link_header reads with the key in the query, bearer, basic) and into the
  commerce sandbox (OAuth2 client credentials);
- failing runs: a 401 (a wrong key), a 500 on every request, an error envelope on page 3;
- the same pipelines as jobs through a live `interlink serve` (DEBUG logs), driven and
  read back through its API: `/jobs`, `/jobs/{id}`, `/runs`, `/pipelines`, `/health`.

Then each secret, raw and in the forms a URL or a header would carry it (percent-encoded,
form-encoded, base64 of a basic credential), is looked for in the bytes of the database
file and of its `-wal` file (read while the server still holds the database open, so the
WAL still has every page written), in the captured stdout and stderr of every process,
and in every API answer: it must occur nowhere. Each flow is also checked to have really
happened (rows written, the failures failed for the reason given).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlink.sandbox import FaultConfig, SandboxServer, create_commerce_app, create_shop_app
from interlink.store import Store, create_api_key

BEARER = "bearer-SECRET-b7d1e4a9c2f0"
QUERY_KEY = "qkey-SECRET-5e8f+2a7c/41="
WRONG_KEY = "wrongkey-SECRET-0f1e2d3c4b"
BASIC_USER = "basic-user"
BASIC_PASSWORD = "basic-SECRET-pw-93c1d7e2"
CLIENT_ID = "commerce-client"
CLIENT_SECRET = "client-SECRET-4a6b8c0d2e"
WRONG_CLIENT_SECRET = "wrong-client-SECRET-7e9d1c3b"

RECORDS = 50
PAGE = 10

# Every logger at DEBUG on stderr, then the CLI as the `interlink` script runs it.
DEBUG_CLI = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,"
    " format='%(levelname)s %(name)s %(message)s')\n"
    "from interlink.cli.main import main\n"
    "sys.argv[0] = 'interlink'\n"
    "main()\n"
)

CONFIG = """
database: sqlite:///{db}
jobs:
  poll_interval: 50ms
  max_attempts: 1

connections:
  bearer_shop:
    base_url: {sandbox}/bearer
    auth: {{type: bearer, token: "${{SHOP_TOKEN}}"}}
  query_shop:
    base_url: {sandbox}/query
    auth: {{type: api_key, key: "${{SHOP_QUERY_KEY}}", name: api_key, in: query}}
    retry: {{max_attempts: 1}}
  broken_shop:
    base_url: {sandbox}/broken
    auth: {{type: api_key, key: "${{SHOP_QUERY_KEY}}", name: api_key, in: query}}
    retry: {{max_attempts: 1}}
  wrong_key_shop:
    base_url: {sandbox}/query
    auth: {{type: api_key, key: "${{WRONG_QUERY_KEY}}", name: api_key, in: query}}
    retry: {{max_attempts: 1}}
  basic_shop:
    base_url: {sandbox}/basic
    auth: {{type: basic, username: {basic_user}, password: "${{SHOP_PASSWORD}}"}}
  commerce:
    base_url: {sandbox}/commerce
    auth:
      type: oauth2_client_credentials
      token_url: oauth2-token
      client_id: {client_id}
      client_secret: "${{COMMERCE_CLIENT_SECRET}}"
  commerce_wrong_secret:
    base_url: {sandbox}/commerce
    auth:
      type: oauth2_client_credentials
      token_url: oauth2-token
      client_id: {client_id}
      client_secret: "${{WRONG_CLIENT_SECRET}}"
    retry: {{max_attempts: 1}}

resources:
  bearer_shop:
    customers:
      path: /customers/next-url
      records: results
      paginate: {{type: next_url, page_size: {page}}}
  query_shop:
    customers_next:
      path: /customers/next-url
      records: results
      paginate: {{type: next_url, page_size: {page}}}
    customers_link:
      path: /customers/link
      paginate: {{type: link_header, page_size: {page}}}
    customers_enveloped:
      path: /customers/wrapped
      params: {{fail_at: {fail_at}}}
      records: data.customers
      paginate: {{type: offset, page_size: {page}, total_path: data.total, overlap: 0}}
  broken_shop:
    customers:
      path: /customers/next-url
      records: results
      paginate: {{type: next_url, page_size: {page}}}
  wrong_key_shop:
    customers:
      path: /customers/next-url
      records: results
      paginate: {{type: next_url, page_size: {page}}}
  basic_shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: {page}}}
  commerce:
    customers:
      path: /api/customers
      format: jsonapi
      paginate: {{type: next_url, next_path: links.next}}
  commerce_wrong_secret:
    customers:
      path: /api/customers
      format: jsonapi

pipelines:
  bearer_rows:
    source: bearer_shop.customers
    destination: {{sql: bearer_rows}}
  query_next_rows:
    source: query_shop.customers_next
    destination: {{sql: query_next_rows}}
  query_link_rows:
    source: query_shop.customers_link
    destination: {{sql: query_link_rows}}
  basic_rows:
    source: basic_shop.customers
    destination: {{sql: basic_rows}}
  to_commerce:
    source: bearer_shop.customers
    destination: commerce.customers
    fields:
      email: email
      first_name: first_name
      last_name: last_name
      external_id: "shop-{{id}}"
    match: email
  fails_401:
    source: wrong_key_shop.customers
    destination: {{sql: never_401}}
  fails_500:
    source: broken_shop.customers
    destination: {{sql: never_500}}
  fails_envelope:
    source: query_shop.customers_enveloped
    destination: {{sql: enveloped_rows}}
  fails_oauth:
    source: bearer_shop.customers
    destination: commerce_wrong_secret.customers
    fields:
      email: email
"""

SUCCEEDING = ["bearer_rows", "query_next_rows", "query_link_rows", "basic_rows", "to_commerce"]
FAILING = {
    "fails_401": "401",
    "fails_500": "500",
    "fails_envelope": "Customer export is temporarily disabled",
    "fails_oauth": "invalid_client",
}
ROW_TABLES = ["bearer_rows", "query_next_rows", "query_link_rows", "basic_rows"]


# -- the sandbox: one server, a shop per auth style, commerce behind OAuth2 ------------------


class BasicGuard:
    """Answers 401 unless the request carries HTTP basic credentials for one user."""

    def __init__(self, app: ASGIApp, username: str, password: str) -> None:
        self.app = app
        raw = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.expected = f"Basic {raw}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and Headers(scope=scope).get("authorization") != self.expected:
            response = JSONResponse({"message": "basic credentials needed"}, status_code=401)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class TokenLog:
    """Keeps every access token the wrapped app's token endpoint hands out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tokens: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/oauth2-token"):
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    token = json.loads(bytes(body) or b"{}").get("access_token")
                    if token:
                        self.tokens.append(token)
            await send(message)

        await self.app(scope, receive, keep)


def sandbox_app(tokens: TokenLog) -> Starlette:
    return Starlette(
        routes=[
            Mount("/bearer", app=create_shop_app(records=RECORDS, token=BEARER)),
            Mount("/query", app=create_shop_app(records=RECORDS, api_key=QUERY_KEY)),
            Mount(
                "/broken",
                app=create_shop_app(
                    records=RECORDS,
                    api_key=QUERY_KEY,
                    faults=FaultConfig(server_error_rate=1.0),
                ),
            ),
            Mount(
                "/basic",
                app=BasicGuard(create_shop_app(records=RECORDS), BASIC_USER, BASIC_PASSWORD),
            ),
            Mount("/commerce", app=tokens),
        ]
    )


# -- processes ------------------------------------------------------------------------------


@dataclass
class Evidence:
    """What the flows left behind, to be searched for secrets."""

    root: Path
    db: Path
    cli: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    database_bytes: dict[str, bytes] = field(default_factory=dict)
    serve_output: str = ""
    issued_tokens: list[str] = field(default_factory=list)
    api_key: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    runs: list[tuple[str, str, str | None]] = field(default_factory=list)

    def logs(self) -> dict[str, str]:
        found = {f"run {n} stdout": p.stdout for n, p in self.cli.items()}
        found.update({f"run {n} stderr": p.stderr for n, p in self.cli.items()})
        found["serve stdout+stderr"] = self.serve_output
        return found


def _env(api_key: str = "") -> dict[str, str]:
    return {
        **os.environ,
        "SHOP_TOKEN": BEARER,
        "SHOP_QUERY_KEY": QUERY_KEY,
        "WRONG_QUERY_KEY": WRONG_KEY,
        "SHOP_PASSWORD": BASIC_PASSWORD,
        "COMMERCE_CLIENT_SECRET": CLIENT_SECRET,
        "WRONG_CLIENT_SECRET": WRONG_CLIENT_SECRET,
        "COLUMNS": "200",
    }


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", DEBUG_CLI, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )


class Serve:
    """`interlink serve` with DEBUG logs, its output in a file, stopped with SIGINT."""

    def __init__(self, config: Path, output: Path) -> None:
        self.output = output
        self._file = output.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                DEBUG_CLI,
                "serve",
                "--config",
                str(config),
                "--port",
                "0",
                "--log-level",
                "debug",
            ],
            stdout=self._file,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(),
        )
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for line in self.output.read_text().splitlines():
                if line.startswith("interlink API on "):
                    url = line.split()[3]
                    try:
                        if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                            return url
                    except httpx.TransportError:
                        pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"interlink serve did not start: {self.output.read_text()[-2000:]}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._file.close()
        return self.output.read_text()


def read_database(db: Path) -> dict[str, bytes]:
    files = {}
    for suffix in ("", "-wal"):
        path = Path(f"{db}{suffix}")
        if path.exists():
            files[path.name] = path.read_bytes()
    return files


def wait_for_job(api: httpx.Client, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job = api.get(f"/jobs/{job_id}").json()["data"]
        if job["status"] in ("completed", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evidence]:
    root = tmp_path_factory.mktemp("secrets")
    db = root / "interlink.db"
    found = Evidence(root=root, db=db)
    tokens = TokenLog(create_commerce_app(client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
    with SandboxServer(sandbox_app(tokens)) as sandbox:
        config = root / "interlink.yaml"
        config.write_text(
            CONFIG.format(
                db=db,
                sandbox=sandbox.url,
                page=PAGE,
                fail_at=2 * PAGE,
                basic_user=BASIC_USER,
                client_id=CLIENT_ID,
            )
        )
        store = Store.open(f"sqlite:///{db}")
        found.api_key = create_api_key(store.engine, "secrets-test", "write").secret
        store.close()
        # A connection held open for the whole test: the CLI processes are then never the
        # last to close the database, so SQLite keeps the WAL file and what was written to
        # it (every checkpoint of every page) instead of folding it back and deleting it.
        holder = sqlite3.connect(db)
        try:
            holder.execute("SELECT count(*) FROM sqlite_master").fetchall()
            for name in [*SUCCEEDING, *FAILING]:
                found.cli[name] = run_cli(config, "run", name)
            serve = Serve(config, root / "serve.log")
            try:
                headers = {"Authorization": f"Bearer {found.api_key}"}
                with httpx.Client(base_url=serve.url, headers=headers, timeout=30) as api:
                    for name in ["query_next_rows", "query_link_rows", "to_commerce", *FAILING]:
                        body = {"pipeline": name, "full_refresh": True}
                        created = api.post("/jobs", json=body)
                        found.answers[f"POST /jobs {name}"] = created.text
                        assert created.status_code == 202, created.text
                        job_id = created.json()["data"]["job_id"]
                        found.jobs[name] = wait_for_job(api, job_id)
                        found.answers[f"GET /jobs/{job_id}"] = api.get(f"/jobs/{job_id}").text
                    for path in ("/jobs", "/jobs?limit=100", "/runs", "/runs?limit=100"):
                        found.answers[f"GET {path}"] = api.get(path).text
                    for path in ("/pipelines", "/health"):
                        found.answers[f"GET {path}"] = api.get(path).text
                    runs = api.get("/runs?limit=100").json()["data"]
                    for run in runs:
                        found.answers[f"GET /runs/{run['id']}"] = api.get(f"/runs/{run['id']}").text
                # Read while the server holds the database: the WAL has the latest pages.
                found.database_bytes = read_database(db)
            finally:
                found.serve_output = serve.stop()
            found.cli["runs (the list)"] = run_cli(config, "runs", "--limit", "100")
            for name, data in read_database(db).items():
                found.database_bytes.setdefault(name, data)
                found.database_bytes[f"{name} (after serve)"] = data
            for table in [*ROW_TABLES, "enveloped_rows"]:
                try:
                    (count,) = holder.execute(f'SELECT count(*) FROM "{table}"').fetchone()
                except sqlite3.OperationalError:
                    count = 0
                found.rows[table] = count
            found.runs = holder.execute(
                "SELECT pipeline, status, message FROM interlink_runs ORDER BY id"
            ).fetchall()
        finally:
            holder.close()
    found.issued_tokens = list(tokens.tokens)
    yield found


# -- the secrets and how they look in the wild ----------------------------------------------


def secret_forms(evidence: Evidence) -> dict[str, set[str]]:
    """Each secret by name, raw and as a URL, a form body or a basic header would carry it."""
    basic = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
    client_basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    secrets = {
        "bearer token": BEARER,
        "query API key": QUERY_KEY,
        "wrong query API key": WRONG_KEY,
        "basic password": BASIC_PASSWORD,
        "basic credential": basic,
        "client secret": CLIENT_SECRET,
        "wrong client secret": WRONG_CLIENT_SECRET,
        "wrong client basic credential": base64.b64encode(
            f"{CLIENT_ID}:{WRONG_CLIENT_SECRET}".encode()
        ).decode(),
        "client basic credential": client_basic,
        "interlink API key": evidence.api_key,
    }
    for number, token in enumerate(evidence.issued_tokens, 1):
        secrets[f"OAuth access token #{number}"] = token
    return {
        name: {value, quote(value, safe=""), quote_plus(value)} for name, value in secrets.items()
    }


def hunt(texts: dict[str, str | bytes], evidence: Evidence) -> list[str]:
    """Where each secret was found: `"<secret> in <place>"`, empty when nowhere."""
    found = []
    for name, forms in secret_forms(evidence).items():
        for place, text in texts.items():
            data = text.encode() if isinstance(text, str) else text
            if any(form.encode() in data for form in forms):
                found.append(f"{name} in {place}")
    return found


# -- the flows really ran -------------------------------------------------------------------


def test_the_flows_ran(evidence: Evidence) -> None:
    for name in [*SUCCEEDING, "runs (the list)"]:
        result = evidence.cli[name]
        assert result.returncode == 0, (name, result.stderr[-2000:])
    for table in ROW_TABLES:
        assert evidence.rows[table] == RECORDS, (table, evidence.rows)
    for name, reason in FAILING.items():
        result = evidence.cli[name]
        assert result.returncode == 1, (name, result.stdout[-1000:], result.stderr[-1000:])
        assert reason in result.stdout + result.stderr, (name, result.stderr[-2000:])
    assert evidence.rows["enveloped_rows"] == 2 * PAGE  # two pages, then the error envelope
    for name in ["query_next_rows", "query_link_rows", "to_commerce"]:
        assert evidence.jobs[name]["status"] == "completed", evidence.jobs[name]
    for name in FAILING:
        job = evidence.jobs[name]
        # A run whose every write was refused ends "completed_with_errors": its job is done.
        assert job["status"] == ("completed" if name == "fails_oauth" else "failed"), job
        assert FAILING[name] in json.dumps(job), job
    statuses = {(pipeline, status) for pipeline, status, _ in evidence.runs}
    for name in SUCCEEDING:
        assert (name, "succeeded") in statuses, evidence.runs
    for name in FAILING:
        expected = "completed_with_errors" if name == "fails_oauth" else "failed"
        assert (name, expected) in statuses, evidence.runs
    failed = [m or "" for p, s, m in evidence.runs if s == "failed"]
    assert any("401" in m for m in failed) and any("500" in m for m in failed)
    # Tokens were issued (the OAuth flow ran), DEBUG request logs were captured, the WAL
    # file was there to be read.
    assert evidence.issued_tokens
    assert "interlink.http" in evidence.cli["query_next_rows"].stderr
    assert "interlink.http" in evidence.serve_output
    # The WAL holds what the runs wrote, next-link checkpoints among them.
    wal = evidence.database_bytes["interlink.db-wal"]
    assert b"/customers/next-url?" in wal and b"/customers/link?" in wal
    assert "fails_401" in evidence.cli["runs (the list)"].stdout


# -- no secret anywhere ---------------------------------------------------------------------


def test_no_secret_in_the_database_or_its_wal(evidence: Evidence) -> None:
    assert hunt(dict(evidence.database_bytes), evidence) == []


def test_no_secret_in_the_logs_at_debug_or_the_output(evidence: Evidence) -> None:
    assert hunt(dict(evidence.logs()), evidence) == []


def test_no_secret_in_any_api_answer(evidence: Evidence) -> None:
    assert hunt(dict(evidence.answers), evidence) == []
