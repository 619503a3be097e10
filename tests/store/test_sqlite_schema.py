"""A new SQLite file gets interlink's tables from `store._sqlite_schema` (sqlite3 alone):
they must be exactly the tables SQLAlchemy's `metadata.create_all` makes, so a file made
either way upgrades the same later. When `_schema.py` changes, the first test fails and
prints the statements to paste into SCHEMA_SQL."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from interlink.store import Store
from interlink.store._migrate import _create_at_head
from interlink.store._revision import HEAD
from interlink.store._schema import metadata
from interlink.store._sqlite_schema import CREATE_AT_HEAD, create_sqlite_at_head


def _words(sql: str) -> str:
    return " ".join(re.sub(r"([(),])", r" \1 ", sql).split())


def _sqlalchemy_statements() -> list[str]:
    from interlink.store._migrate import _version_metadata

    made: list[str] = []
    engine = sa.create_mock_engine(
        "sqlite://", lambda sql, *_, **__: made.append(str(sql.compile(dialect=engine.dialect)))
    )
    metadata.create_all(engine, checkfirst=False)
    _version_metadata.create_all(engine, checkfirst=False)
    return [statement.strip() for statement in made]


def test_the_text_is_what_sqlalchemy_emits() -> None:
    theirs = _sqlalchemy_statements()
    expected = "\n\n".join(f"{statement};" for statement in theirs)
    assert sorted(map(_words, CREATE_AT_HEAD)) == sorted(map(_words, theirs)), (
        "store/_sqlite_schema.py's SCHEMA_SQL is not the schema of _schema.py; it should "
        f"hold (laid out as you like):\n{expected}"
    )


def _catalog(path: Path) -> list[tuple[str, ...]]:
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        shapes = []
        for kind, name, table, sql in rows:
            shapes.append((kind, name, table, _words(sql or "")))
            if kind == "table":
                for column in connection.execute(f'PRAGMA table_info("{name}")'):
                    shapes.append(("column", name, *map(str, column)))
        version = connection.execute("SELECT version_num FROM interlink_alembic_version")
        return [*shapes, ("version", *version.fetchone())]
    finally:
        connection.close()


def test_a_new_file_gets_the_tables_sqlalchemy_makes(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.db", tmp_path / "theirs.db"
    assert create_sqlite_at_head(str(ours))
    engine = sa.create_engine(f"sqlite:///{theirs}")
    with engine.begin() as conn:
        _create_at_head(conn)
    engine.dispose()
    assert _catalog(ours) == _catalog(theirs)
    assert ("version", HEAD) in _catalog(ours)
    connection = sqlite3.connect(ours)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()
    assert create_sqlite_at_head(str(ours))  # at head: nothing to do


def test_older_tables_are_left_for_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE interlink_runs (id INTEGER PRIMARY KEY)")
    connection.commit()
    connection.close()
    assert not create_sqlite_at_head(str(path))
    connection = sqlite3.connect(path)
    names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()
    assert names == {"interlink_runs"}, "nothing was created beside them"


def test_a_first_open_of_a_new_file_does_not_load_sqlalchemy(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from interlink.store import Store\n"
        f"store = Store.open('sqlite:///{tmp_path / 'new.db'}')\n"
        "run = store.begin_run('p')\n"
        "store.finish_run('p', run, status='succeeded', counts={}, errors=[])\n"
        "store.close()\n"
        "print(sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    store = Store.open(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert [r["status"] for r in store.runs()] == ["succeeded"]
    finally:
        store.close()
