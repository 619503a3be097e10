"""`interlink run` with records that fail, then `interlink failed list|forget`, against a
real local API and a real SQLite file: exit codes and what each command prints."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.sandbox import SandboxServer
from tests.sync.fake_source import FAILING, FakeSource, project_yaml


@pytest.fixture
def source() -> Iterator[FakeSource]:
    fake = FakeSource(120)
    with SandboxServer(fake.app()) as server:
        fake.url = server.url  # type: ignore[attr-defined]
        yield fake
    FAILING.clear()


@pytest.fixture
def project(source, tmp_path) -> Path:
    path = tmp_path / "interlink.yaml"
    url = source.url  # type: ignore[attr-defined]
    path.write_text(
        project_yaml(tmp_path / "interlink.db", url, page_size=50, name_call="name_unless_failing")
    )
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def written(project: Path) -> set[int]:
    with sqlite3.connect(project.parent / "interlink.db") as conn:
        return {row[0] for row in conn.execute("SELECT id FROM items")}


def test_a_failed_record_fails_every_run_until_written_or_given_up(source, project):
    FAILING.update({7, 9})
    code, out, err = invoke("run", "items", "-c", str(project))
    assert code == 1, (out, err)
    assert 7 not in written(project)

    code, out, _ = invoke("failed", "list", "-c", str(project))
    assert code == 0
    assert "Failed records not written yet by items" in out
    assert "ValueError: record 7" in out and "map" in out and "mapped" in out
    assert all(len(line) <= 80 for line in out.splitlines())

    # The next run reads nothing new, fetches both again, and they still fail: exit 1.
    code, out, err = invoke("run", "items", "-c", str(project))
    assert code == 1, (out, err)
    assert "fetched again by id: 2 records" in out + err

    FAILING.discard(9)  # fixed for 9 only
    code, out, err = invoke("run", "items", "-c", str(project))
    assert code == 1 and 9 in written(project) and 7 not in written(project)

    code, out, err = invoke("failed", "forget", "items", "7", "8", "--yes", "-c", str(project))
    assert code == 1, (out, err)  # 8 was not owed
    assert "Gave up 1 failed record of items: 7" in out
    assert "interlink run items --id 7" in out
    assert "Not owed: 8" in out

    code, out, err = invoke("run", "items", "-c", str(project))
    assert code == 0, (out, err)  # nothing owed: succeeded, with 7 given up
    code, out, _ = invoke("failed", "list", "items", "-c", str(project))
    assert code == 0 and "No failed records owed by items" in out


def test_forget_needs_keys_or_all_and_a_known_pipeline(project):
    code, _, err = invoke("failed", "forget", "items", "--yes", "-c", str(project))
    assert code == 2 and "give record keys or --all" in err
    code, _, err = invoke("failed", "forget", "items", "1", "--all", "--yes", "-c", str(project))
    assert code == 2 and "give record keys or --all" in err
    code, _, err = invoke("failed", "list", "nope", "-c", str(project))
    assert code == 2 and "no pipeline 'nope'" in err and "Traceback" not in err


def test_forget_all(source, project):
    FAILING.update({3, 4, 5})
    invoke("run", "items", "-c", str(project))
    code, out, _ = invoke("failed", "forget", "items", "--all", "--yes", "-c", str(project))
    assert code == 0 and "Gave up 3 failed records of items: 3, 4, 5" in out
    FAILING.clear()
    code, out, err = invoke("run", "items", "-c", str(project))
    assert code == 0, (out, err)
    assert source.item_requests == 0  # given up: never fetched again
