"""`store` sessions of the dashboard, on SQLite and PostgreSQL: only a hash stored, idle
and absolute expiry, a revoked key ending its sessions at once, pruning."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from interlink.store import (
    SESSION_IDLE,
    SESSION_LIFETIME,
    Store,
    create_api_key,
    dashboard_sessions,
    end_session,
    find_session,
    prune_sessions,
    revoke_api_key,
    start_session,
)
from tests.jobs.procrastinate_schema import fresh_schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'sessions.db'}"
        else:
            url = stack.enter_context(
                fresh_schema(request.getfixturevalue("postgres_url"), "test_sessions")
            )
        opened = Store.open(url)
        yield opened
        opened.close()


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rows(store: Store) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(dashboard_sessions))]


def test_only_the_tokens_hash_is_stored_and_it_finds_its_key(store: Store) -> None:
    key = create_api_key(store.engine, "ops", "write").key
    token = start_session(store.engine, key.id)
    assert len(token) == 43
    [row] = rows(store)
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(row)
    found = find_session(store.engine, token)
    assert found is not None and found.key.id == key.id and found.key.scope == "write"
    assert find_session(store.engine, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert find_session(store.engine, "") is None
    assert start_session(store.engine, key.id) != token, "each session has its own token"


def test_a_session_ends_after_12_idle_hours_and_after_7_days(store: Store) -> None:
    key = create_api_key(store.engine, "ops", "read").key
    clock = Clock()
    token = start_session(store.engine, key.id, clock=clock)
    clock.now += SESSION_IDLE - 1
    assert find_session(store.engine, token, clock=clock) is not None  # and seen now
    clock.now += SESSION_IDLE - 1
    assert find_session(store.engine, token, clock=clock) is not None, "the idle time restarted"
    clock.now += SESSION_IDLE
    assert find_session(store.engine, token, clock=clock) is None
    assert rows(store) == [], "an ended session's row is deleted"

    clock = Clock()
    token = start_session(store.engine, key.id, clock=clock)
    while clock.now + 3600 < 1_800_000_000.0 + SESSION_LIFETIME:
        clock.now += 3600
        assert find_session(store.engine, token, clock=clock) is not None
    clock.now = 1_800_000_000.0 + SESSION_LIFETIME
    assert find_session(store.engine, token, clock=clock) is None, "however busy, 7 days at most"


def test_seen_at_is_written_at_most_once_a_minute(store: Store) -> None:
    key = create_api_key(store.engine, "ops", "read").key
    clock = Clock()
    token = start_session(store.engine, key.id, clock=clock)
    clock.now += 30
    find_session(store.engine, token, clock=clock)
    assert rows(store)[0]["seen_at"] == 1_800_000_000.0
    clock.now += 31
    find_session(store.engine, token, clock=clock)
    assert rows(store)[0]["seen_at"] == clock.now


def test_revoking_the_key_ends_its_sessions_at_once(store: Store) -> None:
    key = create_api_key(store.engine, "ops", "write").key
    other = create_api_key(store.engine, "other", "read").key
    mine = [start_session(store.engine, key.id) for _ in range(2)]
    theirs = start_session(store.engine, other.id)
    revoke_api_key(store.engine, key.id)
    assert [find_session(store.engine, token) for token in mine] == [None, None]
    assert find_session(store.engine, theirs) is not None


def test_ending_and_pruning(store: Store) -> None:
    key = create_api_key(store.engine, "ops", "read").key
    gone = create_api_key(store.engine, "gone", "read").key
    clock = Clock()
    kept = start_session(store.engine, key.id, clock=clock)
    ended = start_session(store.engine, key.id, clock=clock)
    start_session(store.engine, gone.id, clock=clock)
    clock.now += 60
    idle = start_session(store.engine, key.id, clock=Clock(clock.now - SESSION_IDLE - 1))
    assert end_session(store.engine, ended) is True
    assert end_session(store.engine, ended) is False
    revoke_api_key(store.engine, gone.id)
    assert prune_sessions(store.engine, clock=clock) == 2  # the idle one, the revoked key's
    assert find_session(store.engine, kept, clock=clock) is not None
    assert find_session(store.engine, idle, clock=clock) is None
    assert len(rows(store)) == 1
