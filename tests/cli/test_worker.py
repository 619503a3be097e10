"""`interlink worker`: runs queued jobs, takes job modules, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.config import load_config
from interlink.jobs import JobSpec, open_queue
from interlink.store import Store
from tests.cli.jobs_project import write_config


def enqueue(path: Path, *specs: JobSpec) -> list[int]:
    config = load_config(path)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        return [queue.enqueue(spec).id for spec in specs]
    finally:
        queue.close()
        store.close()


def jobs_of(path: Path) -> dict[int, tuple[str, object]]:
    config = load_config(path)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        return {job.id: (job.status, job.result) for job in queue.list()}
    finally:
        queue.close()
        store.close()


def test_worker_burst_runs_the_queued_jobs_and_prints_a_summary(tmp_path) -> None:
    path = write_config(tmp_path)
    ids = enqueue(path, JobSpec("noop"), JobSpec("test.echo", {"n": 7}))
    result = CliRunner().invoke(
        app, ["worker", "-c", str(path), "--burst", "--import", "tests.cli.worker_kinds"]
    )
    assert result.exit_code == 0, result.output
    assert "worker summary" in result.output
    assert "noop 1" in result.output and "test.echo 1" in result.output
    assert jobs_of(path) == {ids[0]: ("completed", None), ids[1]: ("completed", {"echo": {"n": 7}})}


def test_a_job_module_that_cannot_be_used_is_a_one_line_error(tmp_path) -> None:
    path = write_config(tmp_path)
    runner = CliRunner()
    missing = runner.invoke(app, ["worker", "-c", str(path), "--burst", "--import", "no_such_mod"])
    assert missing.exit_code == 2
    assert "cannot import job module 'no_such_mod'" in missing.output
    useless = runner.invoke(app, ["worker", "-c", str(path), "--burst", "--import", "json"])
    assert useless.exit_code == 2
    assert "has no register(kinds) function" in useless.output


def test_sigterm_stops_the_worker_cleanly(tmp_path) -> None:
    path = write_config(tmp_path)
    enqueue(path, JobSpec("noop"))
    interlink = Path(sys.executable).with_name("interlink")
    worker = subprocess.Popen(
        [str(interlink), "worker", "-c", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120"},
    )
    try:
        deadline = time.monotonic() + 20
        while jobs_of(path) and next(iter(jobs_of(path).values()))[0] != "completed":
            assert time.monotonic() < deadline, "the worker ran nothing"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=15)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err.decode()
    assert b"worker summary" in out


def test_worker_refuses_an_outdated_procrastinate_schema_in_one_line(
    tmp_path, postgres_url
) -> None:
    import psycopg

    from tests.jobs.procrastinate_schema import fresh_schema

    with fresh_schema(postgres_url, "test_cli") as url:
        path = tmp_path / "interlink.yaml"
        path.write_text(f"database: {url}\n")
        enqueue(path, JobSpec("noop"))  # creates the schema as this release has it
        schema = url.rpartition("search_path%3D")[2]
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP FUNCTION "{schema}".procrastinate_fetch_job_v2')
        result = CliRunner().invoke(app, ["worker", "-c", str(path), "--burst"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "missing procrastinate_fetch_job_v2" in lines[0]
    assert "--migrations-path" in lines[0]
