"""The vault's rows (store/_tokens.py) on SQLite files and on PostgreSQL: compare-and-set
saves, needs_reauth, listings without ciphertext, the canary, and rewriting every
ciphertext in one locked transaction."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlink.store import (
    Store,
    StoredCiphertext,
    TokenConflictError,
    count_ciphertexts,
    delete_token,
    list_tokens,
    load_canary,
    load_token,
    mark_needs_reauth,
    rewrite_ciphertexts,
    save_canary,
    save_token,
    stored_ciphertexts,
)
from tests.jobs.procrastinate_schema import fresh_schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store.open(f"sqlite:///{tmp_path / 'tokens.db'}")
        yield opened
        opened.close()
        return
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_tokens") as url:
        opened = Store.open(url)
        yield opened
        opened.close()


def test_a_token_is_inserted_at_version_1_and_loaded_back(store):
    assert load_token(store.engine, "crm", "") is None
    with store.transaction() as conn:
        assert (
            save_token(
                conn, "crm", "", "cipher-1", 1_700_000_600.0, expected_version=None, now=10.0
            )
            == 1
        )
    stored = load_token(store.engine, "crm", "")
    assert stored is not None
    assert (stored.ciphertext, stored.version, stored.status) == ("cipher-1", 1, "active")
    assert stored.expires_at == 1_700_000_600.0 and stored.last_error is None
    assert (stored.created_at, stored.updated_at) == (10.0, 10.0)
    assert "cipher-1" not in repr(stored)
    assert stored.where == "interlink_oauth_tokens (connection 'crm')"
    # Accounts of one connection are apart; a connection in a transaction reads too.
    with store.transaction() as conn:
        assert load_token(conn, "crm", "acme") is None
        assert load_token(conn, "crm", "").ciphertext == "cipher-1"


def test_a_save_over_a_version_that_moved_is_refused_and_writes_nothing(store):
    with store.transaction() as conn:
        save_token(conn, "crm", "a", "v1", None, expected_version=None)
    with store.transaction() as conn:
        assert save_token(conn, "crm", "a", "v2", 5.0, expected_version=1, now=20.0) == 2
    with pytest.raises(TokenConflictError) as stale:
        with store.transaction() as conn:
            save_token(conn, "crm", "a", "stale", 6.0, expected_version=1)
    assert (stale.value.expected, stale.value.found) == (1, 2)
    assert "connection 'crm', account 'a'" in str(stale.value)
    assert "version 1 read, 2 stored" in str(stale.value)
    with pytest.raises(TokenConflictError) as first:
        with store.transaction() as conn:
            save_token(conn, "crm", "a", "also-new", 6.0, expected_version=None)
    assert (first.value.expected, first.value.found) == (None, 2)
    stored = load_token(store.engine, "crm", "a")
    assert (stored.ciphertext, stored.version, stored.expires_at) == ("v2", 2, 5.0)

    with store.transaction() as conn:
        assert delete_token(conn, "crm", "a") is True
        assert delete_token(conn, "crm", "a") is False
    with pytest.raises(TokenConflictError, match="deleted since it was read") as gone:
        with store.transaction() as conn:
            save_token(conn, "crm", "a", "late", 6.0, expected_version=2)
    assert gone.value.found is None
    assert load_token(store.engine, "crm", "a") is None


def test_two_writers_of_one_version_at_once_one_wins(store):
    """Eight threads save over version 1 at the same moment: exactly one lands."""
    with store.transaction() as conn:
        save_token(conn, "crm", "", "v1", None, expected_version=None)
    barrier = threading.Barrier(8)
    won: list[str] = []
    lost: list[TokenConflictError] = []

    def writer(name: str) -> None:
        barrier.wait()
        try:
            with store.transaction() as conn:
                save_token(conn, "crm", "", name, None, expected_version=1)
            won.append(name)
        except TokenConflictError as error:
            lost.append(error)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1 and len(lost) == 7
    assert all(error.found == 2 for error in lost)
    stored = load_token(store.engine, "crm", "")
    assert (stored.ciphertext, stored.version) == (won[0], 2)


def test_needs_reauth_keeps_the_version_and_a_save_makes_the_token_active_again(store):
    with store.transaction() as conn:
        save_token(conn, "crm", "", "v1", None, expected_version=None)
        save_token(conn, "crm", "", "v2", None, expected_version=1)
    with store.transaction() as conn:
        # A failure seen on version 1 is stale: version 2 came since.
        assert not mark_needs_reauth(conn, "crm", "", "invalid_grant", expected_version=1)
        assert mark_needs_reauth(conn, "crm", "", "invalid_grant: revoked", expected_version=2)
        assert not mark_needs_reauth(conn, "nothing", "", "x")
    stored = load_token(store.engine, "crm", "")
    assert (stored.status, stored.last_error, stored.version) == (
        "needs_reauth",
        "invalid_grant: revoked",
        2,
    )
    with store.transaction() as conn:
        assert save_token(conn, "crm", "", "v3", None, expected_version=2) == 3
    stored = load_token(store.engine, "crm", "")
    assert (stored.status, stored.last_error) == ("active", None)


def test_listings_never_carry_the_ciphertext(store):
    with store.transaction() as conn:
        save_token(conn, "zeta", "", "c-z", None, expected_version=None)
        save_token(conn, "crm", "b", "c-b", 2.0, expected_version=None)
        save_token(conn, "crm", "a", "c-a", 1.0, expected_version=None)
    listed = list_tokens(store.engine)
    assert [(t.connection, t.account) for t in listed] == [("crm", "a"), ("crm", "b"), ("zeta", "")]
    assert all(not hasattr(t, "ciphertext") for t in listed)
    assert "c-a" not in repr(listed)
    assert [t.account for t in list_tokens(store.engine, "crm")] == ["a", "b"]


def test_the_canary_is_stored_once(store):
    assert load_canary(store.engine) is None
    with store.transaction() as conn:
        assert save_canary(conn, "first") is True
    with store.transaction() as conn:
        assert save_canary(conn, "second") is False  # another process's is kept
    assert load_canary(store.engine) == "first"


def test_rewrite_replaces_every_ciphertext_and_nothing_when_it_fails(store):
    with store.transaction() as conn:
        save_token(conn, "crm", "", "t1", None, expected_version=None)
        save_token(conn, "crm", "x/y", "t2", None, expected_version=None)
        save_canary(conn, "c")
    assert count_ciphertexts(store.engine) == {"interlink_oauth_tokens": 2, "interlink_vault": 1}
    seen: list[StoredCiphertext] = []

    def rewrite(stored: StoredCiphertext) -> str:
        seen.append(stored)
        return stored.ciphertext + "'"

    counts = rewrite_ciphertexts(store.engine, rewrite, now=99.0)
    assert counts == {"interlink_oauth_tokens": 2, "interlink_vault": 1}
    assert [s.where for s in seen] == [
        "interlink_oauth_tokens (connection 'crm')",
        "interlink_oauth_tokens (connection 'crm', account 'x/y')",
        "interlink_vault (canary)",
    ]
    assert [s.ciphertext for s in stored_ciphertexts(store.engine)] == ["t1'", "t2'", "c'"]
    assert load_token(store.engine, "crm", "x/y").version == 1  # the token is the same

    def fail_on_canary(stored: StoredCiphertext) -> str:
        if stored.table == "interlink_vault":
            raise RuntimeError("cannot")
        return "lost"

    with pytest.raises(RuntimeError):
        rewrite_ciphertexts(store.engine, fail_on_canary)
    assert [s.ciphertext for s in stored_ciphertexts(store.engine)] == ["t1'", "t2'", "c'"]


def test_a_save_during_a_rewrite_waits_and_is_not_overwritten(store):
    """A refresh saved while `secrets rotate` runs must survive it: the save waits for the
    rewrite's lock, then lands on the rewritten row."""
    with store.transaction() as conn:
        save_token(conn, "crm", "", "old", None, expected_version=None)
    inside, release = threading.Event(), threading.Event()
    saved: list[float] = []

    def slow_rewrite(stored: StoredCiphertext) -> str:
        inside.set()
        assert release.wait(20)
        return "rotated-" + stored.ciphertext

    def refresh() -> None:
        assert inside.wait(20)
        with store.transaction() as conn:
            save_token(conn, "crm", "", "refreshed", None, expected_version=1)
        saved.append(time.monotonic())

    rotating = threading.Thread(target=rewrite_ciphertexts, args=(store.engine, slow_rewrite))
    saving = threading.Thread(target=refresh)
    rotating.start()
    saving.start()
    time.sleep(0.5)
    assert not saved, "the save did not wait for the rewrite's lock"
    released = time.monotonic()
    release.set()
    rotating.join(30)
    saving.join(30)
    assert saved and saved[0] >= released
    stored = load_token(store.engine, "crm", "")
    assert (stored.ciphertext, stored.version) == ("refreshed", 2)
