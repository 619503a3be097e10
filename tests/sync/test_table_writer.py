"""TableWriter when the data's shape changes: columns widen, names are mapped to what the
database can hold, and values no column can take fail alone (real SQLite files and the
PostgreSQL of INTERLINK_TEST_POSTGRES_URL, one fresh table per test).

Every load goes through a new TableWriter unless a test says otherwise: what it knows of
the table comes from the database, as in a new process.
"""

from __future__ import annotations

import json
import math
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from interlink.errors import ConfigError
from interlink.store import create_engine
from interlink.sync._table_writer import SchemaChange, TableWriter, WriteCounts


@dataclass
class Db:
    engine: sa.Engine
    table: str
    url: str

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def load(
        self,
        records: Sequence[dict[str, Any]],
        *,
        key: Sequence[str] = ("id",),
        writer: TableWriter | None = None,
    ) -> tuple[list[SchemaChange], WriteCounts]:
        writer = writer or self.writer(key=key)
        with self.engine.begin() as conn:
            changes = writer.prepare(conn, records)
            counts = writer.write(conn, records)
        return list(changes), counts

    def writer(self, *, key: Sequence[str] = ("id",)) -> TableWriter:
        return TableWriter(
            self.engine, self.table, primary_key=key, mode="merge" if key else "append"
        )

    def rows(self, key: str = "id") -> dict[Any, dict[str, Any]]:
        """The table's rows by key, read through SQLAlchemy (types from reflection)."""
        table = sa.Table(self.table, sa.MetaData(), autoload_with=self.engine)
        with self.engine.connect() as conn:
            return {r._mapping[key]: dict(r._mapping) for r in conn.execute(sa.select(table))}

    def raw(self, column: str, key: str = "id") -> dict[Any, Any]:
        """One column by key, read with the plain driver (sqlite3, psycopg)."""
        sql = f'SELECT "{key}", "{column}" FROM "{self.table}"'
        if self.dialect == "sqlite":
            path = self.url.removeprefix("sqlite:///")
            with sqlite3.connect(path) as conn:
                return dict(conn.execute(sql).fetchall())
        with psycopg.connect(self.url) as conn:
            return dict(conn.execute(sql).fetchall())

    def columns(self) -> dict[str, Any]:
        return {c["name"]: c["type"] for c in sa.inspect(self.engine).get_columns(self.table)}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Db]:
    table = f"tw_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'dest.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    try:
        yield Db(engine, table, url)
    finally:
        if request.param == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')
        engine.dispose()


# -- widening ------------------------------------------------------------------------------


def test_a_fraction_after_integers_widens_the_column_to_float(db: Db) -> None:
    db.load([{"id": 1, "amount": 10}])
    changes, counts = db.load([{"id": 2, "amount": 10.5}])
    assert changes == [SchemaChange("amount", "float", "integer")]
    assert counts.created == 1 and counts.failures == []
    assert isinstance(db.columns()["amount"], sa.Float)
    assert {k: r["amount"] for k, r in db.rows().items()} == {1: 10, 2: 10.5}
    assert db.raw("amount")[2] == 10.5, "stored as written, not rounded to 10"
    # A new writer sees a float column: integers fit it, nothing changes.
    changes, counts = db.load([{"id": 3, "amount": 7}, {"id": 2, "amount": 10.5}])
    assert changes == [] and counts.created == 1 and counts.unchanged == 1


def test_a_zip_code_with_a_dash_after_integers_widens_the_column_to_text(db: Db) -> None:
    db.load([{"id": 1, "zip": 2134}])
    changes, counts = db.load([{"id": 2, "zip": "02134-1234"}, {"id": 3, "zip": "02134"}])
    assert changes == [SchemaChange("zip", "text", "integer")]
    assert counts.created == 2 and counts.failures == []
    expected = {1: "2134", 2: "02134-1234", 3: "02134"}
    assert {k: r["zip"] for k, r in db.rows().items()} == expected
    assert db.raw("zip") == expected, "the leading zero is kept by the plain driver too"
    # Again, in a new writer: the same batch is unchanged, an integer is stored as text.
    changes, counts = db.load([{"id": 2, "zip": "02134-1234"}, {"id": 4, "zip": 90210}])
    assert changes == [] and counts.unchanged == 1 and counts.created == 1
    assert db.raw("zip")[4] == "90210"


def test_widening_within_one_writer_and_in_append_mode(db: Db) -> None:
    writer = db.writer(key=())
    db.load([{"n": 1}, {"n": 2}], writer=writer)
    changes, _ = db.load([{"n": 2.5}], writer=writer)
    assert changes == [SchemaChange("n", "float", "integer")]
    changes, counts = db.load([{"n": "three"}], writer=writer)
    assert changes == [SchemaChange("n", "text", "float")]
    assert counts.created == 1
    values = sorted(db.raw("n", key="n").values())
    assert values == ["1", "2", "2.5", "three"], "numbers as their shortest digits"


def test_a_key_widens_from_integer_to_text(db: Db) -> None:
    db.load([{"id": 1, "v": "a"}, {"id": 2, "v": "b"}])
    changes, counts = db.load([{"id": "A-3", "v": "c"}])
    assert changes == [SchemaChange("id", "text", "integer")]
    assert counts.created == 1
    assert set(db.rows()) == {"1", "2", "A-3"}
    # The integer key 1 is the row "1": updated, not added.
    changes, counts = db.load([{"id": 1, "v": "z"}, {"id": "A-3", "v": "c"}])
    assert changes == [] and counts.updated == 1 and counts.unchanged == 1
    assert counts.created == 0
    assert db.rows()["1"]["v"] == "z" and len(db.rows()) == 3


def test_objects_and_plain_values_in_one_column_make_it_text(db: Db) -> None:
    db.load([{"id": 1, "p": "plain", "q": {"a": 1}, "b": True}])
    changes, counts = db.load([{"id": 2, "p": {"a": [1, 2]}, "q": 5, "b": 7}])
    # `p` is text already: the object is stored as its JSON text, the column stays.
    assert {(c.column, c.kind, c.previous) for c in changes} == {
        ("b", "text", "boolean"),
        ("q", "text", "json"),
    }
    assert counts.failures == []
    rows = db.rows()
    assert rows[1]["p"] == "plain" and json.loads(rows[2]["p"]) == {"a": [1, 2]}
    assert json.loads(rows[1]["q"]) == {"a": 1} and rows[2]["q"] == "5"
    assert rows[1]["b"] == "true" and rows[2]["b"] == "7"


def test_a_new_column_with_mixed_values_is_created_as_wide_as_they_need(db: Db) -> None:
    changes, counts = db.load(
        [{"id": 1, "a": 1, "m": 1}, {"id": 2, "a": 2.5, "m": "x"}, {"id": 3, "a": None}]
    )
    assert {(c.column, c.kind, c.previous) for c in changes} == {
        ("id", "integer", None),
        ("a", "float", None),
        ("m", "text", None),
    }
    assert counts.created == 3
    assert db.raw("a") == {1: 1.0, 2: 2.5, 3: None}
    assert db.raw("m") == {1: "1", 2: "x", 3: None}


def test_numbers_beyond_what_the_column_holds_exactly_make_it_text(db: Db) -> None:
    big = 2**70
    db.load([{"id": 1, "n": 5, "f": 0.5, "i": 2**60}])
    changes, counts = db.load([{"id": 2, "n": big, "f": 2**60 + 1, "i": 0.5}])
    assert {(c.column, c.kind, c.previous) for c in changes} == {
        ("n", "text", "integer"),  # beyond BIGINT
        ("f", "text", "float"),  # an integer a double cannot hold exactly
        ("i", "text", "integer"),  # a fraction, with integers a double cannot hold
    }
    assert counts.failures == []
    assert db.raw("n") == {1: "5", 2: str(big)}
    assert db.raw("f") == {1: "0.5", 2: str(2**60 + 1)}
    assert db.raw("i") == {1: str(2**60), 2: "0.5"}


def test_every_value_fitting_changes_nothing(db: Db) -> None:
    writer = db.writer()
    db.load([{"id": 1, "a": 1, "t": "x", "j": [1], "b": False, "f": 1.5}], writer=writer)
    changes, counts = db.load(
        [{"id": 2, "a": None, "t": "y", "j": {"k": 1}, "b": True, "f": 2}], writer=writer
    )
    assert changes == [] and counts.created == 1 and counts.failures == []
    assert db.rows()[2]["j"] == {"k": 1} and db.rows()[2]["b"] is True


# -- values that cannot be stored ------------------------------------------------------------


def test_values_no_column_can_take_fail_alone_and_the_rest_is_written(db: Db) -> None:
    db.load([{"id": 1, "v": "a", "f": 1.5, "j": {"x": 1}}])
    bad_key = {"id": {"nested": 1}, "v": "object key"}
    nul = {"id": 3, "v": "a\x00b"}
    nan = {"id": 4, "f": float("nan")}
    nul_in_json = {"id": 5, "j": {"x": "\x00"}}
    good = {"id": 6, "v": "fine", "f": 2.5, "j": {"x": 2}}
    changes, counts = db.load([bad_key, nul, nan, nul_in_json, good])
    failed = {json.dumps(record, default=str): reason for record, reason in counts.failures}
    assert json.dumps(bad_key) in failed
    assert "key id" in failed[json.dumps(bad_key)]
    if db.dialect == "postgresql":
        assert "NUL" in failed[json.dumps(nul)] and "column v" in failed[json.dumps(nul)]
        assert "NUL" in failed[json.dumps(nul_in_json)]
        assert len(failed) == 3
        assert math.isnan(db.raw("f")[4]), "PostgreSQL stores NaN as it is"
        assert counts.created == 2
    else:
        assert "NaN" in failed[json.dumps(nan, default=str)]
        assert len(failed) == 2
        assert db.raw("v")[3] == "a\x00b"
        assert counts.created == 3
    assert changes == []
    assert db.rows()[6]["v"] == "fine"


@pytest.mark.parametrize("with_null", [False, True])
def test_json_values_orjson_cannot_write_as_they_are(db: Db, with_null: bool) -> None:
    """A Decimal inside an object is written as its text (as `default=str` does); a lone
    surrogate fails its record alone. Both with and without a None in the column (the
    column is dumped in one pass when it has none)."""
    from decimal import Decimal

    db.load([{"id": 1, "j": {"x": 1}}])
    records = [
        {"id": 2, "j": {"price": Decimal("9.99")}},
        {"id": 3, "j": {"s": "\ud800"}},
        {"id": 4, "j": ["plain"]},
    ]
    if with_null:
        records.append({"id": 5, "j": None})
    _, counts = db.load(records)
    assert [r["id"] for r, _ in counts.failures] == [3]
    assert "column j" in counts.failures[0][1]
    assert db.rows()[2]["j"] == {"price": "9.99"}
    assert db.rows()[4]["j"] == ["plain"]
    if with_null:
        assert db.rows()[5]["j"] is None


# -- names -----------------------------------------------------------------------------------


def test_field_names_longer_than_postgresql_keeps_get_a_stable_short_column(db: Db) -> None:
    long = "customer_preferred_communication_channel_for_marketing_updates_v2"  # 65 bytes
    twin = long + "_backup"  # the same first 63 bytes
    accents = "é" * 40  # 80 bytes
    changes, _ = db.load([{"id": 1, long: "email", accents: 1}])
    changes2, counts = db.load([{"id": 2, long: "sms", twin: "post", accents: 2}])
    columns = db.columns()
    by_field = {c.field or c.column: c.column for c in changes + changes2}
    if db.dialect == "postgresql":
        assert all(len(c.encode()) <= 63 for c in columns)
        assert len({by_field[long], by_field[twin], by_field[accents]}) == 3
        assert by_field[long].startswith(long[:40]) and by_field[long] != long
    else:
        assert by_field == {"id": "id", long: long, twin: twin, accents: accents}
    assert set(columns) == {"id", by_field[long], by_field[twin], by_field[accents]}
    assert db.raw(by_field[long]) == {1: "email", 2: "sms"}
    assert db.raw(by_field[accents]) == {1: 1, 2: 2}
    # A third writer maps the same fields to the same columns, adding nothing.
    changes, counts = db.load([{"id": 1, long: "phone", twin: None, accents: 1}])
    assert changes == [] and counts.updated == 1
    assert db.raw(by_field[long])[1] == "phone"


def test_names_that_differ_only_in_case_are_two_fields(db: Db) -> None:
    db.load([{"id": 1, "name": "a"}])
    changes, counts = db.load([{"id": 2, "Name": "B", "name": "b"}])
    assert counts.created == 1 and counts.failures == []
    (change,) = changes
    assert change.field == "Name" or (change.field is None and change.column == "Name")
    column = change.column
    if db.dialect == "sqlite":
        # SQLite compares column names without case: `Name` gets a column of its own.
        assert column.startswith("Name__") and column != "Name"
    else:
        assert column == "Name"
    assert db.raw("name") == {1: "a", 2: "b"}
    assert db.raw(column) == {1: None, 2: "B"}
    changes, counts = db.load([{"id": 3, "Name": "C"}])
    assert changes == [] and db.raw(column)[3] == "C" and db.raw("name")[3] is None


def test_both_spellings_in_the_first_batch(db: Db) -> None:
    changes, counts = db.load([{"id": 1, "Email": "A@x", "email": "a@x"}])
    assert counts.created == 1
    columns = {c.field or c.column: c.column for c in changes}
    assert columns["Email"] == "Email"
    assert db.raw(columns["email"]) == {1: "a@x"} and db.raw("Email") == {1: "A@x"}
    changes, _ = db.load([{"id": 1, "email": "b@x", "Email": "B@x"}])
    assert changes == [] and db.raw(columns["email"]) == {1: "b@x"}


# -- SQLite's table rebuild ------------------------------------------------------------------


def test_sqlite_widening_keeps_your_indexes_and_views(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'dest.db'}"
    db = Db(create_engine(url), "people", url)
    db.load([{"id": 1, "age": 30, "city": "Oslo"}])
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE INDEX people_city ON people (city)")
        conn.exec_driver_sql("CREATE VIEW adults AS SELECT id, age FROM people WHERE age >= 18")
        conn.exec_driver_sql("CREATE TABLE audit (city TEXT)")
        conn.exec_driver_sql(
            "CREATE TRIGGER people_audit AFTER INSERT ON people "
            "BEGIN INSERT INTO audit VALUES (new.city); END"
        )
    changes, _ = db.load([{"id": 2, "age": 40.5, "city": "Bergen"}])
    assert changes == [SchemaChange("age", "float", "integer")]
    changes, _ = db.load([{"id": "x-3", "age": 50, "city": "Tromsø"}])
    assert changes == [SchemaChange("id", "text", "integer")]
    with sqlite3.connect(tmp_path / "dest.db") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"people", "people_city", "adults", "people_audit"} <= names
        audited = [r[0] for r in conn.execute("SELECT city FROM audit")]
        assert audited == ["Bergen", "Tromsø"], "the trigger fired before and after the rebuild"
        assert not any(n.startswith("interlink_") for n in names)
        assert sorted(conn.execute("SELECT id, age FROM adults").fetchall()) == [
            ("1", 30.0),
            ("2", 40.5),
            ("x-3", 50.0),
        ]
    db.engine.dispose()


@pytest.mark.postgres
def test_a_table_name_postgresql_would_cut_is_a_config_error(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    with pytest.raises(ConfigError, match="is 64 bytes long and PostgreSQL keeps 63"):
        TableWriter(engine, "t" * 64, primary_key=["id"])
    TableWriter(engine, "t" * 63, primary_key=["id"])
    engine.dispose()
