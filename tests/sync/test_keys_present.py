"""`keys_present`: how many of a batch's keys a table holds, which tells a merge's created
rows from its updated ones. The range probe may answer 0 only when the range is empty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from interlink.store._sqlite_file import SqliteFile
from interlink.sync._keys_present import keys_present


@pytest.fixture
def db(tmp_path: Path):
    file = SqliteFile(str(tmp_path / "t.db"))
    with file.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)", [(i, "x") for i in (5, 7, 9)])
    yield file
    file.close()


def _count(db: SqliteFile, keys: list[Any], *, integer_keys: bool = True) -> int:
    rows = [(k, "y") for k in keys]
    with db.begin() as conn:
        return keys_present(
            conn,
            "t",
            ["id"],
            [0],
            rows,
            values=keys,
            integer_keys=integer_keys,
            dialect="sqlite",
            quote=lambda name: f'"{name}"',
        )


@pytest.mark.parametrize(
    ("keys", "found"),
    [
        ([10, 11, 12], 0),  # past the table's keys: the probe alone answers
        ([1, 2, 3], 0),  # before them
        ([6, 8], 0),  # inside the range, none held: the lookup answers
        ([5, 6, 7, 7], 2),  # a key twice counts once
        ([9, None, 4], 1),  # a key left empty: no probe, the lookup counts the rest
        ([None], 0),
    ],
)
def test_counts_the_keys_held(db: SqliteFile, keys: list[Any], found: int) -> None:
    assert _count(db, keys) == found


def test_text_keys_skip_the_probe(db: SqliteFile) -> None:
    assert _count(db, ["5", "x"], integer_keys=False) == 1
