"""The vault's rows: OAuth token sets (as ciphertext) and the key canary.

```python
stored = load_token(store.engine, "crm", "")           # StoredToken | None
with store.transaction() as conn:
    version = save_token(
        conn, "crm", "", ciphertext, expires_at, expected_version=stored.version
    )                                                   # TokenConflictError if it moved
listed = list_tokens(store.engine)                      # TokenInfo, never the ciphertext
```

Nothing here encrypts or decrypts: the store keeps what `interlink.oauth.Vault` made of a
token, and hands it back as it was. Every save bumps the row's `version`; a writer names the
version it read (`expected_version`), so two processes that refreshed the same token at
once cannot overwrite each other's refresh token unseen: the second save raises
`TokenConflictError` and that process loads the token again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from interlink.errors import InterlinkError

from ._schema import oauth_tokens, vault_canary

__all__ = [
    "CANARY",
    "StoredCiphertext",
    "StoredToken",
    "TokenConflictError",
    "TokenInfo",
    "TokenStatus",
    "count_ciphertexts",
    "delete_token",
    "list_tokens",
    "load_canary",
    "load_token",
    "mark_needs_reauth",
    "rewrite_ciphertexts",
    "save_canary",
    "save_token",
    "stored_ciphertexts",
]

TokenStatus = Literal["active", "needs_reauth"]

CANARY = "canary"
"""The name of the canary's row in `interlink_vault`."""

_TOKENS = oauth_tokens.name
_VAULT = vault_canary.name


def _account(connection: str, account: str) -> str:
    """The token's owner for a message: `connection 'crm'` or `connection 'crm', account 'a'`."""
    if account:
        return f"connection {connection!r}, account {account!r}"
    return f"connection {connection!r}"


class TokenConflictError(InterlinkError):
    """A token was saved over a version that is no longer the stored one.

    Another process saved (or deleted) the token since this one read it: load it again
    and use what is stored, which is newer than what this process holds.
    """

    code = "TOKEN_CONFLICT"

    def __init__(
        self, connection: str, account: str, expected: int | None, found: int | None
    ) -> None:
        self.connection = connection
        self.account = account
        self.expected = expected
        self.found = found
        owner = _account(connection, account)
        if expected is None:
            message = (
                f"interlink_oauth_tokens: {owner}: a token was saved by another process "
                f"first (version {found} now); load it again"
            )
        elif found is None:
            message = (
                f"interlink_oauth_tokens: {owner}: the stored token was deleted since it "
                f"was read (version {expected}); connect the account again"
            )
        else:
            message = (
                f"interlink_oauth_tokens: {owner}: the stored token changed since it was "
                f"read (version {expected} read, {found} stored); load it again"
            )
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What listings show of a stored token: whose it is and its state, never its secrets."""

    connection: str
    account: str
    """'' for the connection's single account."""
    expires_at: float | None
    """When the access token expires (epoch seconds), when the provider said."""
    status: TokenStatus
    last_error: str | None
    version: int
    created_at: float
    updated_at: float

    @property
    def where(self) -> str:
        """The row for a message: `interlink_oauth_tokens (connection 'crm', account 'a')`."""
        return f"{_TOKENS} ({_account(self.connection, self.account)})"


@dataclass(frozen=True, slots=True)
class StoredToken(TokenInfo):
    """A stored token with its ciphertext, for the vault to decrypt."""

    ciphertext: str = field(default="", repr=False)


class StoredCiphertext(NamedTuple):
    """One encrypted value as stored, and where: what `interlink secrets rotate` rewrites."""

    table: str
    key: tuple[str, ...]
    """The row's key within its table: (connection, account), or ("canary",)."""
    ciphertext: str

    @property
    def where(self) -> str:
        """The row for a message: `interlink_oauth_tokens (connection 'crm')`."""
        if self.table == _TOKENS:
            return f"{self.table} ({_account(*self.key)})"
        return f"{self.table} ({', '.join(self.key)})"


_INFO = [c for c in oauth_tokens.c if c.name not in ("id", "ciphertext")]


def _info(row: sa.RowMapping) -> dict[str, object]:
    return {
        "connection": row["connection"],
        "account": row["account"],
        "expires_at": None if row["expires_at"] is None else float(row["expires_at"]),
        "status": row["status"],
        "last_error": row["last_error"],
        "version": int(row["version"]),
        "created_at": float(row["created_at"]),
        "updated_at": float(row["updated_at"]),
    }


def _where(connection: str, account: str) -> sa.ColumnElement[bool]:
    return sa.and_(oauth_tokens.c.connection == connection, oauth_tokens.c.account == account)


def _first(
    bind: sa.Engine | sa.Connection, query: sa.Select[tuple[object, ...]]
) -> sa.RowMapping | None:
    if isinstance(bind, sa.Connection):
        return bind.execute(query).mappings().first()
    with bind.connect() as conn:
        return conn.execute(query).mappings().first()


def load_token(
    bind: sa.Engine | sa.Connection, connection: str, account: str
) -> StoredToken | None:
    """The stored token of `connection`'s `account` ('' for its single one); None when the
    account is not connected."""
    row = _first(bind, sa.select(oauth_tokens).where(_where(connection, account)))
    if row is None:
        return None
    return StoredToken(**_info(row), ciphertext=row["ciphertext"])  # type: ignore[arg-type]


def list_tokens(engine: sa.Engine, connection: str | None = None) -> list[TokenInfo]:
    """Every stored token (of one connection, or of all) by connection and account, without
    their ciphertext."""
    query = sa.select(*_INFO).order_by(oauth_tokens.c.connection, oauth_tokens.c.account)
    if connection is not None:
        query = query.where(oauth_tokens.c.connection == connection)
    with engine.connect() as conn:
        return [
            TokenInfo(**_info(row))  # type: ignore[arg-type]
            for row in conn.execute(query).mappings()
        ]


def _stored_version(conn: sa.Connection, connection: str, account: str) -> int | None:
    found = conn.execute(
        sa.select(oauth_tokens.c.version).where(_where(connection, account))
    ).scalar()
    return None if found is None else int(found)


def _insert_new(conn: sa.Connection, table: sa.Table, key: list[str], **values: object) -> bool:
    """INSERT a row unless one with the same `key` is there; True when it was inserted."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # only for PostgreSQL databases

        # SQLAlchemy adds RETURNING for the primary key there, and rowcount reads -1.
        returning = (
            postgresql.insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=key)
            .returning(table.c[key[0]])
        )
        return conn.execute(returning).first() is not None
    insert = sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=key)
    return conn.execute(insert).rowcount == 1


def save_token(
    conn: sa.Connection,
    connection: str,
    account: str,
    ciphertext: str,
    expires_at: float | None,
    *,
    expected_version: int | None,
    now: float | None = None,
) -> int:
    """Store a token's ciphertext and return its new version; the token is `active` again.

    `expected_version` is the version this process read: None when it found no token (the
    row is inserted at version 1), else the row is updated only if it is still at that
    version. Anything else raises `TokenConflictError`, and nothing is written.
    """
    at = time.time() if now is None else now
    values = {
        "ciphertext": ciphertext,
        "expires_at": expires_at,
        "status": "active",
        "last_error": None,
        "updated_at": at,
    }
    if expected_version is None:
        if _insert_new(
            conn,
            oauth_tokens,
            ["connection", "account"],
            connection=connection,
            account=account,
            version=1,
            created_at=at,
            **values,
        ):
            return 1
    else:
        updated = conn.execute(
            sa.update(oauth_tokens)
            .where(_where(connection, account), oauth_tokens.c.version == expected_version)
            .values(version=expected_version + 1, **values)
        )
        if updated.rowcount == 1:
            return expected_version + 1
    found = _stored_version(conn, connection, account)
    raise TokenConflictError(connection, account, expected_version, found)


def mark_needs_reauth(
    conn: sa.Connection,
    connection: str,
    account: str,
    error: str,
    *,
    expected_version: int | None = None,
    now: float | None = None,
) -> bool:
    """Mark a token `needs_reauth` with the reason (a message without secrets: the caller
    scrubs it); False when there is no such token, or, with `expected_version`, when it is
    no longer at that version (someone saved a newer token: the failure is stale).

    The version is not bumped: the ciphertext is unchanged, and a save that was already
    under way may still land (it makes the token `active` again).
    """
    update = (
        sa.update(oauth_tokens)
        .where(_where(connection, account))
        .values(
            status="needs_reauth",
            last_error=error,
            updated_at=time.time() if now is None else now,
        )
    )
    if expected_version is not None:
        update = update.where(oauth_tokens.c.version == expected_version)
    return conn.execute(update).rowcount == 1


def delete_token(
    conn: sa.Connection, connection: str, account: str, *, expected_version: int | None = None
) -> bool:
    """Forget a token; False when there was none (or, with `expected_version`, when the
    stored one is no longer that version: it was saved again since it was read)."""
    delete = sa.delete(oauth_tokens).where(_where(connection, account))
    if expected_version is not None:
        delete = delete.where(oauth_tokens.c.version == expected_version)
    return conn.execute(delete).rowcount == 1


# -- the canary ---------------------------------------------------------------------------


def load_canary(bind: sa.Engine | sa.Connection) -> str | None:
    """The canary's ciphertext; None before the vault was first used with this database."""
    row = _first(bind, sa.select(vault_canary).where(vault_canary.c.name == CANARY))
    return None if row is None else str(row["ciphertext"])


def save_canary(conn: sa.Connection, ciphertext: str, *, now: float | None = None) -> bool:
    """Store the canary unless one is there already (another process was first); True when
    this one was stored."""
    at = time.time() if now is None else now
    return _insert_new(
        conn, vault_canary, ["name"], name=CANARY, ciphertext=ciphertext, created_at=at
    )


# -- every ciphertext: status and rotation ------------------------------------------------


def stored_ciphertexts(bind: sa.Engine | sa.Connection) -> list[StoredCiphertext]:
    """Every encrypted value in the database: each token, then the canary."""
    if not isinstance(bind, sa.Connection):
        with bind.connect() as conn:
            return stored_ciphertexts(conn)
    tokens = bind.execute(
        sa.select(
            oauth_tokens.c.connection, oauth_tokens.c.account, oauth_tokens.c.ciphertext
        ).order_by(oauth_tokens.c.connection, oauth_tokens.c.account)
    )
    found = [
        StoredCiphertext(_TOKENS, (connection, account), ciphertext)
        for connection, account, ciphertext in tokens
    ]
    canaries = bind.execute(
        sa.select(vault_canary.c.name, vault_canary.c.ciphertext).order_by(vault_canary.c.name)
    )
    found.extend(StoredCiphertext(_VAULT, (name,), ciphertext) for name, ciphertext in canaries)
    return found


def count_ciphertexts(bind: sa.Engine | sa.Connection) -> dict[str, int]:
    """How many encrypted values each table holds."""
    if not isinstance(bind, sa.Connection):
        with bind.connect() as conn:
            return count_ciphertexts(conn)
    return {
        table.name: int(bind.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        for table in (oauth_tokens, vault_canary)
    }


def rewrite_ciphertexts(
    engine: sa.Engine,
    rewrite: Callable[[StoredCiphertext], str],
    *,
    now: float | None = None,
) -> dict[str, int]:
    """Replace every stored ciphertext by `rewrite(it)`, in one transaction; how many rows
    of each table were rewritten.

    The tables are locked against writers first (SQLite: the database's write lock;
    PostgreSQL: an EXCLUSIVE lock on both tables, which lets readers through), so a token
    saved meanwhile is neither lost nor missed: its save waits, then lands on the rewritten
    row. Versions are not bumped: the tokens are the same. If `rewrite` raises, nothing
    is changed.
    """
    at = time.time() if now is None else now
    counts = dict.fromkeys((_TOKENS, _VAULT), 0)
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(sa.text(f"LOCK TABLE {_TOKENS}, {_VAULT} IN EXCLUSIVE MODE"))
        try:
            for stored in stored_ciphertexts(conn):
                new = rewrite(stored)
                if stored.table == _TOKENS:
                    conn.execute(
                        sa.update(oauth_tokens).where(_where(*stored.key)).values(ciphertext=new)
                    )
                else:
                    conn.execute(
                        sa.update(vault_canary)
                        .where(vault_canary.c.name == stored.key[0])
                        .values(ciphertext=new, rotated_at=at)
                    )
                counts[stored.table] += 1
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    return counts
