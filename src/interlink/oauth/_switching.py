"""Switching a connection, or one account of it, off and on again (`interlink connections
disable|enable`, `POST /api/v1/connections/{connection}/disable|enable`).

```python
done = switch_off(config, store, "crm", "acct_1001", reason="customer left", by="cli")
done.changed      # False when it already was off (the first reason and time are kept)
switch_on(config, store, "crm", "acct_1001")
```

Nothing is deleted: tokens, checkpoints, schedules and stored deliveries stay. While a
connection is off, runs, jobs and schedules through it are refused (`open_catalog`'s
guard, the scheduler), and webhook deliveries that need it are held, unprocessed
(webhooks/_held.py, whose `switch_on_releasing` is what the CLI, the API and the
dashboard call to switch on); switched on again, everything goes on from where it was.
The switch of the connection itself is account '' (the one account of a connection that
names none): an account's own switch stops that account only.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from interlink.config import ACCOUNT_NAME, InterlinkConfig
from interlink.errors import ConfigError
from interlink.store import (
    Store,
    Switch,
    connection_switches,
    disable,
    disabled,
    enable,
    list_tokens,
)

__all__ = [
    "MAX_REASON",
    "AccountNotConnectedError",
    "Switched",
    "UnknownConnectionError",
    "check_target",
    "switch_off",
    "switch_on",
]

MAX_REASON = 500
"""Characters a reason for switching off may have."""
_MAX_BY = 200


class UnknownConnectionError(ConfigError):
    """No connection of that name in interlink.yaml; the message lists the known ones."""

    def __init__(self, connection: str, known: list[str]) -> None:
        self.connection = connection
        self.known = known
        listed = ", ".join(known) or "none defined"
        super().__init__(
            f"no connection named {connection!r} in interlink.yaml (connections: {listed})",
            key="CONNECTION",
        )


class AccountNotConnectedError(ConfigError):
    """The connection has no stored token for that account (or no accounts at all)."""

    def __init__(self, connection: str, account: str, message: str) -> None:
        self.connection = connection
        self.account = account
        super().__init__(message, key="--account")


@dataclass(frozen=True, slots=True)
class Switched:
    """What a switch did: the state now, and whether it changed it."""

    connection: str
    account: str
    enabled: bool
    changed: bool
    switch: Switch | None
    """When off: why, since when and by whom (the first switch-off's, when it already was)."""

    def to_dict(self) -> dict[str, object]:
        disabled_info = None
        if self.switch is not None:
            disabled_info = {
                "reason": self.switch.reason,
                "since": self.switch.disabled_at,
                "by": self.switch.disabled_by,
            }
        return {
            "connection": self.connection,
            "account": self.account,
            "enabled": self.enabled,
            "changed": self.changed,
            "disabled": disabled_info,
        }

    @property
    def what(self) -> str:
        """`connection 'crm'` or `account 'acct_1' of connection 'crm'`, for messages."""
        if self.account:
            return f"account {self.account!r} of connection {self.connection!r}"
        return f"connection {self.connection!r}"


def check_target(
    config: InterlinkConfig,
    engine: sa.Engine,
    connection: str,
    account: str = "",
    *,
    switched_off_is_enough: bool = False,
) -> None:
    """Raise UnknownConnectionError for a connection interlink.yaml does not have, and
    AccountNotConnectedError for an account with no stored token (or one of a connection
    that is not `oauth2`). With `switched_off_is_enough`, an account that has a switch-off
    but no token any more passes (switching it on only tidies up)."""
    settings = config.connections.get(connection)
    if settings is None:
        raise UnknownConnectionError(connection, list(config.connections))
    if not account:
        return
    if not ACCOUNT_NAME.fullmatch(account):
        raise AccountNotConnectedError(
            connection,
            account,
            "expected an account name (letters, digits and _ . @ + -, at most 200); "
            f"got {account!r}",
        )
    if settings.auth.type != "oauth2":
        raise AccountNotConnectedError(
            connection,
            account,
            f"connection {connection!r} uses {settings.auth.type} auth: it has no accounts "
            "(leave --account out to switch the whole connection)",
        )
    connected = [info.account for info in list_tokens(engine, connection)]
    if account in connected:
        return
    if switched_off_is_enough:
        with engine.connect() as conn:
            if _own_switch(conn, connection, account) is not None:
                return
    named = ", ".join(repr(name) if name else "(default)" for name in connected)
    raise AccountNotConnectedError(
        connection,
        account,
        f"account {account!r} is not connected to {connection!r} (connected: {named or 'none'})",
    )


def _own_switch(conn: sa.Connection, connection: str, account: str) -> Switch | None:
    """The switch of exactly this account ('' the connection's), not the connection's
    that `disabled` puts first."""
    row = (
        conn.execute(
            sa.select(connection_switches).where(
                connection_switches.c.connection == connection,
                connection_switches.c.account == account,
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Switch(
        connection=row["connection"],
        account=row["account"],
        reason=row["reason"],
        disabled_by=row["disabled_by"],
        disabled_at=float(row["disabled_at"]),
    )


def switch_off(
    config: InterlinkConfig,
    store: Store,
    connection: str,
    account: str = "",
    *,
    reason: str | None = None,
    by: str | None = None,
) -> Switched:
    """Switch `connection` (or one `account` of it) off; `by` says who did ("cli", an API
    key's id and name), never with a secret."""
    check_target(config, store.engine, connection, account)
    if reason is not None:
        reason = " ".join(reason.split())[:MAX_REASON] or None
    with store.transaction() as conn:
        changed = disable(
            conn,
            connection,
            account,
            reason=reason,
            by=by[:_MAX_BY] if by else None,
        )
        own = _own_switch(conn, connection, account)
    return Switched(connection, account, enabled=False, changed=changed, switch=own)


def switch_on(
    config: InterlinkConfig, store: Store, connection: str, account: str = ""
) -> Switched:
    """Switch `connection` (or one `account` of it) on again. Switching an account on does
    not switch its connection on: `Switched.switch` is then the connection's switch,
    which still holds the account off."""
    check_target(config, store.engine, connection, account, switched_off_is_enough=True)
    with store.transaction() as conn:
        changed = enable(conn, connection, account)
        still = disabled(conn, connection, account)
    return Switched(connection, account, enabled=still is None, changed=changed, switch=still)
