"""Connections and accounts switched off: `interlink connections disable|enable`.

```python
with store.transaction() as conn:
    disable(conn, "crm", "acct_1001", reason="customer left", by="cli")
found = disabled(store.engine, "crm", "acct_1001")   # Switch | None
enable_connection(...)                                 # forgets the row again
```

A row means "off". The connection itself is account '' here: switching it off stops every
account of it; switching an account off stops that one. Nothing else is touched: tokens,
checkpoints and schedules stay, and switching on again picks up where things were.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from ._schema import connection_switches

__all__ = ["Switch", "disable", "disabled", "enable", "list_switches"]


@dataclass(frozen=True, slots=True)
class Switch:
    """A connection ('' account) or an account switched off, by whom, when and why."""

    connection: str
    account: str
    reason: str | None
    disabled_by: str | None
    disabled_at: float


def _switch(row: sa.RowMapping) -> Switch:
    return Switch(
        connection=row["connection"],
        account=row["account"],
        reason=row["reason"],
        disabled_by=row["disabled_by"],
        disabled_at=float(row["disabled_at"]),
    )


def disable(
    conn: sa.Connection,
    connection: str,
    account: str = "",
    *,
    reason: str | None = None,
    by: str | None = None,
    now: float | None = None,
) -> bool:
    """Switch a connection (account '') or an account off; False when it already was (the
    first reason and time are kept)."""
    values = {
        "connection": connection,
        "account": account,
        "reason": reason,
        "disabled_by": by,
        "disabled_at": time.time() if now is None else now,
    }
    keys = ["connection", "account"]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # only for PostgreSQL databases

        insert = (
            postgresql.insert(connection_switches)
            .values(**values)
            .on_conflict_do_nothing(index_elements=keys)
            .returning(connection_switches.c.connection)
        )
        return conn.execute(insert).first() is not None
    lite = (
        sqlite.insert(connection_switches)
        .values(**values)
        .on_conflict_do_nothing(index_elements=keys)
    )
    return conn.execute(lite).rowcount == 1


def enable(conn: sa.Connection, connection: str, account: str = "") -> bool:
    """Switch a connection or an account on again; False when it was not off."""
    deleted = conn.execute(
        sa.delete(connection_switches).where(
            connection_switches.c.connection == connection,
            connection_switches.c.account == account,
        )
    )
    return deleted.rowcount == 1


def disabled(bind: sa.Engine | sa.Connection, connection: str, account: str = "") -> Switch | None:
    """Why `connection` (for `account`) may not be used: the connection's own switch
    first, then the account's; None when both are on."""
    query = (
        sa.select(connection_switches)
        .where(
            connection_switches.c.connection == connection,
            connection_switches.c.account.in_(["", account]),
        )
        .order_by(connection_switches.c.account)
    )
    if isinstance(bind, sa.Connection):
        row = bind.execute(query).mappings().first()
    else:
        with bind.connect() as conn:
            row = conn.execute(query).mappings().first()
    return None if row is None else _switch(row)


def list_switches(bind: sa.Engine | sa.Connection) -> list[Switch]:
    """Everything switched off, by connection and account."""
    query = sa.select(connection_switches).order_by(
        connection_switches.c.connection, connection_switches.c.account
    )
    if isinstance(bind, sa.Connection):
        return [_switch(row) for row in bind.execute(query).mappings()]
    with bind.connect() as conn:
        return [_switch(row) for row in conn.execute(query).mappings()]
