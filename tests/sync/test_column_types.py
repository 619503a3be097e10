"""The table writer writes its DDL and reads its columns without SQLAlchemy on SQLite;
what it writes and reads must stay what SQLAlchemy's types and reflection gave, so tables
made before and after agree: the column types (`sql_type`), the `CREATE TABLE`
(`create_table_sql`, compared by what SQLite makes of both) and the kind each declared
type reads as (`sqlite_kind`, against SQLAlchemy's reflection, quirks and all)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from interlink.store import quote
from interlink.store._sqlite_file import SqliteConnection
from interlink.sync._column_widening import create_table_sql, sql_type
from interlink.sync._table_columns import read_columns, sqlite_kind

SQLALCHEMY_TYPES: dict[str, Any] = {
    "boolean": sa.Boolean(),
    "integer": sa.BigInteger(),
    "float": sa.Float(precision=53),
    "text": sa.Text(),
    "json": sa.JSON(),
}


@pytest.mark.parametrize("kind", list(SQLALCHEMY_TYPES))
def test_column_types_are_what_sqlalchemy_compiles(kind: str) -> None:
    assert sql_type(kind, "sqlite") == SQLALCHEMY_TYPES[kind].compile(dialect=sqlite.dialect())  # type: ignore[arg-type]
    pg = JSONB() if kind == "json" else SQLALCHEMY_TYPES[kind]
    assert sql_type(kind, "postgresql") == pg.compile(dialect=postgresql.dialect())  # type: ignore[arg-type]


def _shape(connection: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    return connection.execute(f"PRAGMA table_info({quote(table)})").fetchall()


@pytest.mark.parametrize("keys", [[], ["id"], ["id", "Name"]])
def test_create_table_makes_the_table_sqlalchemy_made(keys: list[str]) -> None:
    columns = {"id": "INTEGER", "Name": "TEXT", "select": "BOOLEAN", 'we"ird': "JSON"}
    connection = sqlite3.connect(":memory:")
    connection.execute(create_table_sql("ours", columns, keys, quote))
    table = sa.Table(
        "theirs",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key="id" in keys, autoincrement=False),
        sa.Column("Name", sa.Text(), primary_key="Name" in keys),
        sa.Column("select", sa.Boolean()),
        sa.Column('we"ird', sa.JSON()),
    )
    engine = sa.create_engine("sqlite://", creator=lambda: connection)
    with engine.begin() as conn:
        table.create(conn)
    assert _shape(connection, "ours") == _shape(connection, "theirs")


DECLARED = [
    "BIGINT", "INTEGER", "INT", "SMALLINT", "integer", "MEDIUMINT", "UNSIGNED BIG INT",
    "BOOLEAN", "BOOL", "boolean", "FLOAT", "REAL", "DOUBLE", "DOUBLE PRECISION",
    "NUMERIC", "NUMERIC(10, 2)", "DECIMAL(5,1)", "numeric", "JSON", "JSONB", "json",
    "TEXT", "VARCHAR(20)", "NVARCHAR", "CHARACTER(3)", "CLOB", "BLOB", "", "DATE",
    "DATETIME", "TIMESTAMP", "TIME", "MONEY", "whatever",
]  # fmt: skip


def _sqlalchemy_kind(kind: Any) -> str:
    """How the table writer sorted SQLAlchemy's reflected types before it read PRAGMAs."""
    if isinstance(kind, sa.Boolean):
        return "boolean"
    if isinstance(kind, sa.Integer):
        return "integer"
    if isinstance(kind, sa.Float | sa.Numeric):
        return "float"
    if isinstance(kind, sa.JSON):
        return "json"
    return "text"


def test_declared_types_read_as_sqlalchemys_reflection_read_them() -> None:
    connection = sqlite3.connect(":memory:")
    columns = ", ".join(f"c{i} {declared}" for i, declared in enumerate(DECLARED))
    connection.execute(f"CREATE TABLE t ({columns})")
    engine = sa.create_engine("sqlite://", creator=lambda: connection)
    with engine.connect() as conn:
        reflected = [_sqlalchemy_kind(c["type"]) for c in sa.inspect(conn).get_columns("t")]
    ours = read_columns(SqliteConnection(connection), "t")
    assert ours is not None
    assert [kind for _, kind, _ in ours] == reflected
    assert [sqlite_kind(declared) for declared in DECLARED] == reflected
    assert read_columns(SqliteConnection(connection), "missing") is None
