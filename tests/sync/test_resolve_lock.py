"""`interlink conflicts resolve` holds the pipeline's lock, as a run does.

Without it, a run of the same pipeline could bind the pair at newer versions while a
resolution wrote the parked (older) source record over the target and bound the pair at
the parked versions. Against the real sandbox (shop -> commerce, `conflict: manual`, three
parked conflicts), each test asserts the lock was really held or taken.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.sandbox import SandboxServer, create_sandbox_app
from interlink.store import Store
from tests.cli.test_conflicts import CONFIG


class StealsTheLock:
    """Lets every request through; while the target's record is being written (a PATCH
    to commerce), another holder takes the pipeline's lock in the database, as a run
    that took over an expired lease would."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner
        self.database: Path | None = None
        self.stolen = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.database is not None
            and scope["type"] == "http"
            and scope["method"] == "PATCH"
            and scope["path"].startswith("/commerce/api/customers/")
        ):
            with sqlite3.connect(self.database) as conn:
                self.stolen += conn.execute(
                    "UPDATE interlink_locks SET run_id = 999999, owner = 'elsewhere:1' "
                    "WHERE pipeline = 'to_commerce'"
                ).rowcount
        await self.inner(scope, receive, send)


def _sandbox() -> ASGIApp:
    """Shop and commerce with three customers on both sides: three parked conflicts."""
    return create_sandbox_app(records=30, commerce_records=10, commerce_overlap=3)


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), terminal_width=200)


def _locks(database: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT pipeline, run_id FROM interlink_locks").fetchall()


def _status(database: Path, conflict_id: int) -> tuple[Any, ...]:
    with sqlite3.connect(database) as conn:
        return conn.execute(
            "SELECT status, resolution FROM interlink_conflicts WHERE id = ?", (conflict_id,)
        ).fetchone()


def _with_conflicts(tmp_path: Path, server: SandboxServer) -> tuple[Path, Path]:
    database = tmp_path / "state.db"
    config = tmp_path / "interlink.yaml"
    config.write_text(CONFIG.format(db=database, url=server.url))
    first = _invoke("run", "to_commerce", "-c", str(config))
    assert first.exit_code == 0, first.output
    listed = _invoke("conflicts", "list", "-c", str(config))
    assert listed.output.count("to_commerce") == 3, listed.output
    return config, database


def test_a_resolution_is_refused_while_a_run_holds_the_pipeline(tmp_path):
    with SandboxServer(
        create_sandbox_app(records=30, commerce_records=10, commerce_overlap=3)
    ) as s:
        config, database = _with_conflicts(tmp_path, s)
        store = Store.open(f"sqlite:///{database}")
        try:
            run_id = store.begin_run("to_commerce")  # a run in progress, in this process
            refused = _invoke("conflicts", "resolve", "1", "--take", "target", "-c", str(config))
            assert refused.exit_code == 1, refused.output
            assert "conflict 1 cannot be resolved now: already running (run" in refused.output
            assert _status(database, 1)[0] == "open", "the conflict stays as it was"
            assert _locks(database) == [("to_commerce", run_id)], "the run keeps its lock"
            store.finish_run("to_commerce", run_id, status="succeeded", counts={}, errors=[])
        finally:
            store.close()
        took = _invoke("conflicts", "resolve", "1", "--take", "target", "-c", str(config))
        assert took.exit_code == 0, took.output
        assert _status(database, 1) == ("resolved", "target")
        assert _locks(database) == [], "the resolution gave the lock back"


def test_a_run_is_refused_while_a_conflict_is_being_resolved(tmp_path):
    with SandboxServer(
        create_sandbox_app(records=30, commerce_records=10, commerce_overlap=3)
    ) as s:
        config, database = _with_conflicts(tmp_path, s)
        store = Store.open(f"sqlite:///{database}")
        try:
            store.take_lock("to_commerce", -2)  # what `resolve 2` holds while it writes
            refused = _invoke("run", "to_commerce", "-c", str(config))
            assert refused.exit_code == 1, refused.output
            assert "conflict 2 of this pipeline is being resolved by hand" in refused.output
            store.release_lock("to_commerce", -2)
        finally:
            store.close()
        again = _invoke("run", "to_commerce", "-c", str(config))
        assert again.exit_code == 0, again.output


def test_a_resolution_that_lost_the_lock_records_nothing(tmp_path):
    thief = StealsTheLock(_sandbox())
    with SandboxServer(thief) as s:
        config, database = _with_conflicts(tmp_path, s)
        thief.database = database
        with sqlite3.connect(database) as conn:
            bindings = conn.execute("SELECT count(*) FROM interlink_bindings").fetchone()[0]
        lost = _invoke("conflicts", "resolve", "3", "--take", "source", "-c", str(config))
        assert thief.stolen == 1, "the lock was taken while the target was written"
        assert lost.exit_code == 1, lost.output
        assert "no longer holds the pipeline's lock" in lost.output
        assert _status(database, 3)[0] == "open", "the conflict is not marked resolved"
        with sqlite3.connect(database) as conn:
            after = conn.execute("SELECT count(*) FROM interlink_bindings").fetchone()[0]
        assert after == bindings, "no binding was saved for the pair"
        assert _locks(database) == [("to_commerce", 999999)], "the new holder keeps its lock"
