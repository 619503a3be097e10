"""Connections and accounts switched off: `interlink connections disable|enable`.

```python
with store.transaction() as conn:
    disable(conn, "crm", "acct_1001", reason="customer left", by="cli")
found = disabled(store, "crm", "acct_1001")   # Switch | None
enable(conn, "crm", "acct_1001")               # forgets the row again
```

A row means "off". The connection itself is account '' here: switching it off stops every
account of it; switching an account off stops that one. Nothing else is touched: tokens,
checkpoints and schedules stay, and switching on again picks up where things were.

The statements are SQL text (`store._connection`), so a run checks its connections
without SQLAlchemy: `disabled` takes the Store itself, an engine, or a connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._connection import Connection, dialect_of, named
from ._store import Store

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["Switch", "disable", "disabled", "enable", "list_switches"]

_COLUMNS = "connection, account, reason, disabled_by, disabled_at"
_ADD = (
    f"INSERT INTO interlink_connection_switches ({_COLUMNS}) VALUES (:connection, :account, "
    ":reason, :by, :at) ON CONFLICT (connection, account) DO NOTHING"
)
_DROP = (
    "DELETE FROM interlink_connection_switches "
    "WHERE connection = :connection AND account = :account"
)
_FIND = (
    f"SELECT {_COLUMNS} FROM interlink_connection_switches WHERE connection = :connection "
    "AND account IN ('', :account) ORDER BY account"
)
_ALL = f"SELECT {_COLUMNS} FROM interlink_connection_switches ORDER BY connection, account"


@dataclass(frozen=True, slots=True)
class Switch:
    """A connection ('' account) or an account switched off, by whom, when and why."""

    connection: str
    account: str
    reason: str | None
    disabled_by: str | None
    disabled_at: float


def _switch(row: Any) -> Switch:
    connection, account, reason, disabled_by, disabled_at = row
    return Switch(connection, account, reason, disabled_by, float(disabled_at))


@contextmanager
def _connection(bind: Store | sa.Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Store):
        with bind.read() as conn:
            yield conn
    elif hasattr(bind, "connect"):  # an engine
        with bind.connect() as conn:
            yield conn
    else:
        yield bind


def disable(
    conn: Connection,
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
        "by": by,
        "at": time.time() if now is None else now,
    }
    return conn.exec_driver_sql(named(conn, _ADD), values).rowcount == 1


def enable(conn: Connection, connection: str, account: str = "") -> bool:
    """Switch a connection or an account on again; False when it was not off."""
    values = {"connection": connection, "account": account}
    return conn.exec_driver_sql(named(conn, _DROP), values).rowcount == 1


def disabled(
    bind: Store | sa.Engine | Connection,
    connection: str,
    account: str = "",
    *,
    locked: bool = False,
) -> Switch | None:
    """Why `connection` (for `account`) may not be used: the connection's own switch
    first, then the account's; None when both are on.

    `locked` (given the caller's transaction): on PostgreSQL the switches found stay as
    they are until it ends (`FOR SHARE`: switching on waits for it); on SQLite the
    caller's transaction holds the file's write lock already when it wrote first."""
    with _connection(bind) as conn:
        sql = named(conn, _FIND)
        if locked and dialect_of(conn) == "postgresql":
            sql += " FOR SHARE"
        row = conn.exec_driver_sql(sql, {"connection": connection, "account": account}).first()
    return None if row is None else _switch(row)


def list_switches(bind: Store | sa.Engine | Connection) -> list[Switch]:
    """Everything switched off, by connection and account."""
    with _connection(bind) as conn:
        return [_switch(row) for row in conn.exec_driver_sql(_ALL).all()]
