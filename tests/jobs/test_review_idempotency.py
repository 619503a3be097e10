"""Hostile review (session 8): an idempotency key gives back one job however many callers
send it at the same moment (threads with their own connections, both backends)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.jobs import JobSpec, open_queue
from interlink.store import Store
from tests.jobs.procrastinate_schema import fresh_schema

CALLERS = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def queue(request: pytest.FixtureRequest, tmp_path) -> Iterator[Any]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
        schema = None
    else:
        request.applymarker(pytest.mark.postgres)
        schema = fresh_schema(request.getfixturevalue("postgres_url"), "test_review_idem")
        url = schema.__enter__()
    config = InterlinkConfig.model_validate({"database": url})
    store = Store.open(config.database)
    opened = open_queue(config, store)
    yield opened
    opened.close()
    store.close()
    if schema is not None:
        schema.__exit__(None, None, None)


def test_one_key_sent_at_once_by_many_callers_makes_one_job(queue: Any) -> None:
    for round_ in range(5):
        key = f"key-{round_}"
        barrier = threading.Barrier(CALLERS)
        ids: list[int] = []
        errors: list[BaseException] = []

        def call(
            barrier: threading.Barrier = barrier,
            key: str = key,
            ids: list[int] = ids,
            errors: list[BaseException] = errors,
        ) -> None:
            barrier.wait()
            try:
                ids.append(queue.enqueue(JobSpec("noop", idempotency_key=key)).id)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(CALLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(ids) == CALLERS and len(set(ids)) == 1, ids
    assert queue.counts()["queued"] == 5
