"""`SqliteFile`: the sqlite3 connections a run keeps its books and writes its table with,
without SQLAlchemy. Its transactions must hold what SQLAlchemy's did: commit on exit,
roll back on an exception, savepoints that undo only themselves, the write lock taken at
`BEGIN` (a second writer waits for the first to commit), and the engine's pragmas."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from interlink.store._sqlite_file import SqliteFile, sqlite_file_path


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///.interlink/interlink.db", ".interlink/interlink.db"),
        ("sqlite:////srv/app/state.db", "/srv/app/state.db"),
        ("sqlite://", None),
        ("sqlite:///", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file.db?mode=ro", None),  # a query string: SQLAlchemy reads it
        ("sqlite:///a%20b.db", None),  # an escape
        ("postgresql://u@h/db", None),
    ],
)
def test_which_urls_open_with_sqlite3_alone(url: str, path: str | None) -> None:
    assert sqlite_file_path(url) == path


@pytest.fixture
def db(tmp_path: Path):
    file = SqliteFile(str(tmp_path / "t.db"))
    with file.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    yield file
    file.close()


def _rows(db: SqliteFile) -> list[tuple[int, str]]:
    with db.connect() as conn:
        return conn.exec_driver_sql("SELECT id, v FROM t ORDER BY id").all()


def test_a_transaction_commits_on_exit_and_rolls_back_on_an_exception(db: SqliteFile) -> None:
    with db.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)", (1, "a"))
    with pytest.raises(RuntimeError), db.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)", (2, "b"))
        raise RuntimeError("the batch failed")
    assert _rows(db) == [(1, "a")]


def test_a_savepoint_undoes_only_itself(db: SqliteFile) -> None:
    with db.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1, 'kept')")
        with pytest.raises(sqlite3.IntegrityError), conn.begin_nested():
            conn.exec_driver_sql("INSERT INTO t VALUES (2, 'undone')")
            conn.exec_driver_sql("INSERT INTO t VALUES (1, 'duplicate')")
        with conn.begin_nested(), conn.begin_nested():
            conn.exec_driver_sql("INSERT INTO t VALUES (3, 'nested')")
    assert _rows(db) == [(1, "kept"), (3, "nested")]


def test_a_list_of_rows_runs_once_per_row_and_counts_them(db: SqliteFile) -> None:
    with db.begin() as conn:
        result = conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b")])
        assert result.rowcount == 2
        named = conn.exec_driver_sql("UPDATE t SET v = :v WHERE id = :id", {"v": "c", "id": 2})
        assert named.rowcount == 1
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 2
        assert conn.exec_driver_sql("SELECT v FROM t ORDER BY id").scalars().all() == ["a", "c"]
        assert conn.exec_driver_sql("SELECT v FROM t WHERE id = 9").first() is None
        mapped = conn.exec_driver_sql("SELECT id, v FROM t WHERE id = 1").mappings()
        assert mapped == [{"id": 1, "v": "a"}]


def test_connections_have_the_engines_pragmas(db: SqliteFile) -> None:
    with db.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_a_second_writer_waits_for_the_first_to_commit(db: SqliteFile) -> None:
    """BEGIN IMMEDIATE: the write lock is taken at the start, so a transaction that reads
    and then writes never finds the file taken half-way; the other waits its turn."""
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with db.begin() as conn:
            first_in.set()
            conn.exec_driver_sql("INSERT INTO t VALUES (1, 'first')")
            time.sleep(0.3)
            order.append("first commits")

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(5)
    started = time.monotonic()
    with db.begin() as conn:
        order.append("second begins")
        waited = time.monotonic() - started
        count = conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one()
    thread.join()
    assert order == ["first commits", "second begins"]
    assert waited >= 0.2, waited
    assert count == 1  # it saw the first one's row: it began after the commit


def test_connections_are_kept_and_one_per_concurrent_user(db: SqliteFile) -> None:
    with db.connect() as a:
        with db.connect() as b:
            assert a.driver is not b.driver
        kept = b.driver
    with db.connect() as again:
        assert again.driver in (a.driver, kept)


def test_a_closed_file_refuses_new_transactions_and_closes_what_comes_back(
    db: SqliteFile,
) -> None:
    with db.connect() as conn:
        db.close()
        conn.exec_driver_sql("SELECT 1")  # still usable until given back
    with pytest.raises(sqlite3.ProgrammingError):
        conn.driver.execute("SELECT 1")  # closed when given back
    with pytest.raises(RuntimeError, match="was closed"), db.begin():
        pass


def test_a_savepoint_keeps_the_error_when_sqlite_rolled_back_everything(db: SqliteFile) -> None:
    """A trigger's RAISE(ROLLBACK) ends the whole transaction: the error that did it goes
    up, not "no such savepoint"."""
    with db.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER no13 BEFORE INSERT ON t WHEN NEW.id = 13 "
            "BEGIN SELECT RAISE(ROLLBACK, 'no 13'); END"
        )
    with pytest.raises(sqlite3.IntegrityError, match="no 13"), db.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1, 'gone with the rest')")
        with conn.begin_nested():
            conn.exec_driver_sql("INSERT INTO t VALUES (13, 'refused')")
    assert _rows(db) == []
