"""What a database's interlink tables look like, as comparable data: every table, column
(type, nullability, server default), key, constraint and index, with each index's own
definition from the catalog (so a partial index's WHERE and a DESC column count)."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa


def _index_sql(conn: sa.Connection) -> dict[str, str]:
    """Each index's definition, whitespace and the schema's name taken out."""
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).all()
        schema = "main"
    else:
        rows = conn.execute(
            sa.text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            )
        ).all()
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    return {
        name: re.sub(rf"\b{re.escape(schema)}\.", "", re.sub(r"\s+", " ", sql)).strip()
        for name, sql in rows
    }


def shape(engine: sa.Engine) -> dict[str, Any]:
    """Every `interlink_` table of the database (the version table too), described."""
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        indexes = _index_sql(conn)
        tables: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            if not table.startswith("interlink_"):
                continue
            table_indexes = inspector.get_indexes(table)
            tables[table] = {
                "columns": {
                    column["name"]: (
                        str(column["type"]),
                        column["nullable"],
                        column["default"],
                        column.get("autoincrement"),
                    )
                    for column in inspector.get_columns(table)
                },
                "primary_key": inspector.get_pk_constraint(table),
                "unique": sorted(
                    (str(unique["name"]), tuple(unique["column_names"]))
                    for unique in inspector.get_unique_constraints(table)
                ),
                "foreign_keys": inspector.get_foreign_keys(table),
                "checks": inspector.get_check_constraints(table),
                "indexes": {
                    str(index["name"]): (
                        tuple(index["column_names"]),
                        bool(index["unique"]),
                        indexes.get(str(index["name"])),
                    )
                    for index in table_indexes
                },
            }
        return tables
