"""Processes that open one fresh database at the same moment: the schema is created once,
and none of them fails. (Before versioned migrations, with these 8 processes released
together, 70 of 80 SQLite opens and 54 of 80 PostgreSQL opens failed, in every round:
`table interlink_runs already exists` and the like.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from interlink.store import Store, create_engine, list_api_keys
from tests.jobs.procrastinate_schema import fresh_schema
from tests.store import old_database

OPENER = Path(__file__).with_name("race_opener.py")
PROCESSES = 8
ROUNDS = 10


def _wait_for(paths: list[Path], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        assert time.monotonic() < deadline, f"timed out waiting for {paths}"
        time.sleep(0.01)


def race(folder: Path, urls: list[str]) -> list[list[str]]:
    """Start PROCESSES openers, then release them together once per URL; their outcomes."""
    (folder / "urls.json").write_text(json.dumps(urls))
    openers = [
        subprocess.Popen([sys.executable, str(OPENER), str(folder), str(index)])
        for index in range(PROCESSES)
    ]
    outcomes: list[list[str]] = []
    try:
        _wait_for([folder / f"ready-{index}" for index in range(PROCESSES)])
        for round_ in range(len(urls)):
            (folder / f"go-{round_}").write_text("")
            done = [folder / f"done-{round_}-{index}" for index in range(PROCESSES)]
            _wait_for(done)
            outcomes.append([path.read_text() for path in done])
        for opener in openers:
            assert opener.wait(timeout=60) == 0
    finally:
        for opener in openers:
            if opener.poll() is None:
                opener.kill()
                opener.wait()
    return outcomes


def failures(outcomes: list[list[str]]) -> list[str]:
    """Each failed open, after a summary line: how many opens and rounds failed."""
    failed = [
        f"round {round_}: {outcome}"
        for round_, results in enumerate(outcomes)
        for outcome in results
        if outcome != "ok"
    ]
    if not failed:
        return []
    rounds = sum(1 for results in outcomes if any(outcome != "ok" for outcome in results))
    opens = sum(len(results) for results in outcomes)
    return [
        f"{len(failed)} of {opens} opens failed, in {rounds} of {len(outcomes)} rounds"
    ] + failed


def test_processes_opening_a_fresh_sqlite_file_at_once_all_succeed(tmp_path):
    urls = [f"sqlite:///{tmp_path / f'race-{round_}.db'}" for round_ in range(ROUNDS)]
    outcomes = race(tmp_path, urls)
    problems = failures(outcomes)
    assert not problems, "\n".join(problems)
    assert_every_opener_wrote(urls)


def assert_every_opener_wrote(urls: list[str], *, before: tuple[str, ...] = ()) -> None:
    for url in urls:
        store = Store.open(url)
        try:
            names = sorted(key.name for key in list_api_keys(store.engine))
        finally:
            store.close()
        assert names == sorted([*before, *(f"opener {index}" for index in range(PROCESSES))])


def test_processes_opening_an_old_sqlite_file_at_once_upgrade_it_once(tmp_path):
    urls = [f"sqlite:///{tmp_path / f'old-{round_}.db'}" for round_ in range(3)]
    kept = []
    for url in urls:
        engine = create_engine(url)
        old_database.build(engine)
        kept.append(old_database.snapshot(engine))
        engine.dispose()
    outcomes = race(tmp_path, urls)
    problems = failures(outcomes)
    assert not problems, "\n".join(problems)
    assert_every_opener_wrote(urls, before=("ci",))
    for url, before in zip(urls, kept, strict=True):
        engine = create_engine(url)
        after = old_database.snapshot(engine)
        engine.dispose()
        after["interlink_api_keys"] = after["interlink_api_keys"][:1]  # the openers' keys
        assert after == before


@pytest.fixture
def schema_urls(postgres_url: str) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [stack.enter_context(fresh_schema(postgres_url, "test_race")) for _ in range(ROUNDS)]


@pytest.mark.postgres
def test_processes_opening_a_fresh_postgresql_schema_at_once_all_succeed(tmp_path, schema_urls):
    outcomes = race(tmp_path, schema_urls)
    problems = failures(outcomes)
    assert not problems, "\n".join(problems)
    assert_every_opener_wrote(schema_urls)
