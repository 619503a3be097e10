"""Runs that act for one connected account of the source's `oauth2` connection.

```yaml
pipelines:
  customers:
    source: stripe.customers
    destination: {sql: "customers_{account}"}
    account: "*"            # or acct_1001; `interlink run customers --account A` overrides
```

Everything a run keeps is the account's own: its checkpoint and cursor, its lock, its run
rows, the bindings and conflicts of an API destination. They are kept under the key
`NAME@ACCOUNT` (`state_key`); the default account '' keeps the plain `NAME`, so nothing
stored before accounts existed moves. An SQL table naming `{account}` gets the account made
safe for a table name (`account_table`).

A run for an account opens its own catalog, through the `CatalogOpener` its caller gives
(`lambda accounts: open_catalog(config, store, accounts=accounts)`): sync opens exactly the
catalog the account needs, so no caller can hand a run of account B a catalog whose tokens
are account A's.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from interlink.config import (
    ACCOUNT_NAME,
    ACCOUNT_PLACEHOLDER,
    InterlinkConfig,
    OAuth2AuthConfig,
    PipelineConfig,
    is_reserved_table,
)
from interlink.connectors import Catalog
from interlink.errors import ConfigError
from interlink.store import Store

from ._column_names import PG_NAME_BYTES

__all__ = [
    "ALL_ACCOUNTS",
    "CatalogOpener",
    "account_catalog",
    "account_table",
    "acting_account",
    "connected_accounts",
    "require_connected",
    "source_connection",
    "split_key",
    "state_key",
    "table_part",
]

ALL_ACCOUNTS = "*"
"""`account: "*"`: the pipeline runs once for every connected account."""

CatalogOpener = Callable[[Mapping[str, str]], Catalog]
"""Opens a catalog whose oauth2 connections act for the accounts named (connection ->
account; '' or absent: the default account). Give
`lambda accounts: open_catalog(config, store, accounts=accounts)`."""

_KEY_CHARS = 200
"""What interlink's tables hold of a pipeline key (their `pipeline` columns)."""
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def state_key(pipeline: str, account: str) -> str:
    """What a run of `pipeline` for `account` keeps its state, lock and run rows under:
    `NAME` for the default account '', `NAME@ACCOUNT` otherwise (a key longer than the
    tables hold keeps the account's first characters and a hash of the whole)."""
    if not account:
        return pipeline
    key = f"{pipeline}@{account}"
    if len(key) <= _KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    head = key[: _KEY_CHARS - len(digest) - 1]
    return f"{head}~{digest}"


def split_key(key: str) -> tuple[str, str]:
    """The pipeline and account of a key `state_key` made (pipeline names have no `@`;
    an account shortened by `state_key` comes back shortened)."""
    pipeline, _, account = key.partition("@")
    return pipeline, account


def source_connection(pipeline: PipelineConfig) -> str:
    """The connection the pipeline reads from (`shop` of `shop.customers`)."""
    return pipeline.source.partition(".")[0]


def acting_account(
    config: InterlinkConfig, name: str, pipeline: PipelineConfig, account: str | None
) -> str:
    """The account a run of pipeline `name` acts for: `account` when given, else the
    pipeline's `account:`, else the default account ''; `*` means every connected one.

    ConfigError for a name that cannot be an account, an account of a source whose
    connection is not `oauth2`, and `*` for a table that does not name `{account}`.
    """
    chosen = (pipeline.account if account is None else account) or ""
    key = f"pipelines.{name}.account"
    if not chosen:
        return ""
    if chosen != ALL_ACCOUNTS and not ACCOUNT_NAME.fullmatch(chosen):
        raise ConfigError(
            "expected an account name (letters, digits and _ . @ + -, at most 200) or '*' "
            f"for every connected account; got {chosen!r}",
            key=key,
        )
    connection = source_connection(pipeline)
    auth = config.connections[connection].auth
    if not isinstance(auth, OAuth2AuthConfig):
        raise ConfigError(
            f"account {chosen!r}: only an oauth2 connection has connected accounts, and "
            f"{pipeline.source} is read through {connection!r} (auth: {auth.type})",
            key=key,
        )
    table = pipeline.destination.sql
    if chosen == ALL_ACCOUNTS and table is not None and ACCOUNT_PLACEHOLDER not in table:
        raise ConfigError(
            f"account '*' writes every account's records: the table must name "
            f"{ACCOUNT_PLACEHOLDER} (such as {table}_{ACCOUNT_PLACEHOLDER}) so that one "
            "account's run never replaces or deletes another's rows",
            key=f"pipelines.{name}.destination",
        )
    return chosen


def table_part(account: str) -> str:
    """An account as part of a table name: lower case, every character outside
    [a-z0-9_] turned into `_` (`Acct.1001@Example` -> `acct_1001_example`)."""
    return re.sub(r"[^a-z0-9_]", "_", account.lower())


def account_table(name: str, table: str, account: str, *, dialect: str) -> str:
    """The SQL table a run of pipeline `name` for `account` writes: `{account}` in
    `table` replaced by `table_part(account)`.

    ConfigError (naming `pipelines.NAME.destination`) for `{account}` without an account,
    and for a name the destination refuses: reserved (interlink_..., pg_...), not a
    plain identifier, or longer than PostgreSQL's 63 bytes there.
    """
    key = f"pipelines.{name}.destination"
    if ACCOUNT_PLACEHOLDER not in table:
        return table
    if not account:
        raise ConfigError(
            f"the table {table!r} names {ACCOUNT_PLACEHOLDER}, and this run acts for no "
            "account: set the pipeline's account: (or '*'), or run it with --account",
            key=key,
        )
    resolved = table.replace(ACCOUNT_PLACEHOLDER, table_part(account))
    for_account = f"for account {account!r}, the table {table!r} is {resolved!r}"
    if is_reserved_table(resolved):
        raise ConfigError(
            f"{for_account}, a reserved name (tables starting with interlink_, sqlite_, "
            "pg_ or procrastinate_, and alembic_version, belong to interlink or the "
            "database); put something before {account}",
            key=key,
        )
    if not _TABLE.match(resolved):
        raise ConfigError(
            f"{for_account}, which does not start with a letter or '_'; put a letter "
            "before {account}",
            key=key,
        )
    if dialect == "postgresql" and len(resolved.encode()) > PG_NAME_BYTES:
        raise ConfigError(
            f"{for_account}: {len(resolved.encode())} bytes, and PostgreSQL keeps "
            f"{PG_NAME_BYTES}; shorten the table's name",
            key=key,
        )
    return resolved


def connected_accounts(store: Store, connection: str) -> list[str]:
    """The accounts of `connection` with a stored token, in name order (not the default
    account '', which interlink.yaml's own tokens seed)."""
    from interlink.store import list_tokens  # the vault's tables: SQLAlchemy

    return [t.account for t in list_tokens(store.engine, connection) if t.account]


def require_connected(store: Store, name: str, connection: str, account: str) -> None:
    """ConfigError, naming the connected accounts, when `account` of `connection` has no
    stored token."""
    from interlink.store import load_token

    if load_token(store.engine, connection, account) is not None:
        return
    known = ", ".join(connected_accounts(store, connection)) or "none yet"
    raise ConfigError(
        f"pipeline {name}: connection {connection!r} has no connected account {account!r} "
        f"(connected: {known}); `interlink connect {connection} --account {account}` "
        "connects it"
    )


def refuse_shared_table(store: Store, name: str, pipeline: PipelineConfig, account: str) -> None:
    """ConfigError when another connected account of the source's connection would write
    the same table as `account` (`Shop.One` and `shop_one` both make `..._shop_one`):
    checked before every run for an account, not only for `account: "*"`, so that one
    account's run never replaces or deletes another's rows."""
    table = pipeline.destination.sql
    if table is None or ACCOUNT_PLACEHOLDER not in table:
        return
    dialect = store.engine.dialect.name
    mine = account_table(name, table, account, dialect=dialect)
    for other in connected_accounts(store, source_connection(pipeline)):
        if other != account and account_table(name, table, other, dialect=dialect) == mine:
            raise ConfigError(
                f"accounts {other!r} and {account!r} would both write the table {mine!r} "
                "(an account's name in a table is lower-cased, and characters other than "
                "letters, digits and '_' become '_'); disconnect one of them or give the "
                "pipeline a table of its own; nothing was run",
                key=f"pipelines.{name}.destination",
            )


@asynccontextmanager
async def account_catalog(
    store: Store,
    name: str,
    pipeline: PipelineConfig,
    account: str,
    *,
    catalog: Catalog | None,
    catalogs: CatalogOpener | None,
) -> AsyncIterator[Catalog]:
    """The catalog a run of pipeline `name` for `account` reads through.

    An account other than the default is always opened here, through `catalogs`, for that
    account of the source's connection (and closed again); a `catalog` given whole serves
    the default account only, since nothing in it says whose tokens it holds.
    """
    if catalog is not None and catalogs is not None:
        raise TypeError("pass catalog= or catalogs=, not both")
    if account:
        if catalogs is None:
            raise TypeError(
                f"pipeline {name} runs for account {account!r}: pass catalogs= (a function "
                "that opens a catalog for the accounts it is given), not a catalog"
            )
        connection = source_connection(pipeline)
        await asyncio.to_thread(require_connected, store, name, connection, account)
        await asyncio.to_thread(refuse_shared_table, store, name, pipeline, account)
        async with catalogs({connection: account}) as opened:
            yield opened
        return
    if catalog is not None:
        yield catalog
        return
    if catalogs is None:
        raise TypeError("pass catalog= (default account only) or catalogs=")
    async with catalogs({}) as opened:
        yield opened
