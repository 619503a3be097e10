"""The rows of "connect your account" attempts (`interlink_oauth_flows`).

```python
with store.transaction() as conn:
    add_flow(conn, FlowRow(id=..., connection="crm", status="ticket", ticket_hash=..., ...))
    started = start_flow(conn, ticket_hash, state_hash=..., session_hash=..., verifier=...,
                         expires_at=..., now=...)          # FlowRow | None: single use
found = flow_by_state(store.engine, state_hash)           # FlowRow | None
with store.transaction() as conn:
    claimed = claim_flow(conn, found.id, now=...)         # False: used, or expired
```

Every step is one conditional UPDATE, so a ticket starts one flow and a state finishes
one, however many requests race with it. Only hashes of the ticket, the state and the
browser session are stored; the PKCE verifier is what the vault made of it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import sqlalchemy as sa

from ._schema import oauth_flows

__all__ = [
    "FlowRow",
    "FlowStatus",
    "add_flow",
    "claim_flow",
    "finish_flow",
    "flow_by_state",
    "get_flow",
    "prune_flows",
    "start_flow",
]

FlowStatus = Literal["ticket", "started", "exchanging", "connected", "failed"]


@dataclass(frozen=True, slots=True)
class FlowRow:
    """One attempt: `ticket` (a link made, not yet opened) -> `started` (the browser was
    sent to the provider) -> `exchanging` (the callback came; the code is being redeemed)
    -> `connected` or `failed`."""

    id: str
    connection: str
    account: str
    redirect_uri: str
    status: FlowStatus
    created_at: float
    expires_at: float
    ticket_hash: str | None = field(default=None, repr=False)
    state_hash: str | None = field(default=None, repr=False)
    session_hash: str | None = field(default=None, repr=False)
    verifier: str | None = field(default=None, repr=False)
    connected_account: str | None = None
    error: str | None = None
    created_by: str | None = None
    finished_at: float | None = None


def _row(found: sa.RowMapping) -> FlowRow:
    values = dict(found)
    for name in ("created_at", "expires_at", "finished_at"):
        if values[name] is not None:
            values[name] = float(values[name])
    return FlowRow(**values)


def add_flow(conn: sa.Connection, flow: FlowRow) -> None:
    conn.execute(sa.insert(oauth_flows).values(**asdict(flow)))


def start_flow(
    conn: sa.Connection,
    connection: str,
    ticket_hash: str,
    *,
    state_hash: str,
    session_hash: str,
    verifier: str,
    expires_at: float,
    now: float | None = None,
) -> FlowRow | None:
    """Turn the flow of an unused, unexpired ticket of `connection` into a started one
    (its state, the browser session it is bound to, the verifier, a new expiry); None
    when the ticket is unknown, another connection's, used or expired (nothing changes)."""
    at = time.time() if now is None else now
    updated = conn.execute(
        sa.update(oauth_flows)
        .where(
            oauth_flows.c.ticket_hash == ticket_hash,
            oauth_flows.c.connection == connection,
            oauth_flows.c.status == "ticket",
            oauth_flows.c.expires_at > at,
        )
        .values(
            status="started",
            state_hash=state_hash,
            session_hash=session_hash,
            verifier=verifier,
            expires_at=expires_at,
        )
    )
    if updated.rowcount != 1:
        return None
    found = (
        conn.execute(sa.select(oauth_flows).where(oauth_flows.c.ticket_hash == ticket_hash))
        .mappings()
        .first()
    )
    return None if found is None else _row(found)


def _first(bind: sa.Engine | sa.Connection, query: sa.Select[tuple[object, ...]]) -> FlowRow | None:
    if isinstance(bind, sa.Connection):
        found = bind.execute(query).mappings().first()
    else:
        with bind.connect() as conn:
            found = conn.execute(query).mappings().first()
    return None if found is None else _row(found)


def flow_by_state(bind: sa.Engine | sa.Connection, state_hash: str) -> FlowRow | None:
    return _first(bind, sa.select(oauth_flows).where(oauth_flows.c.state_hash == state_hash))


def get_flow(bind: sa.Engine | sa.Connection, flow_id: str) -> FlowRow | None:
    return _first(bind, sa.select(oauth_flows).where(oauth_flows.c.id == flow_id))


def claim_flow(conn: sa.Connection, flow_id: str, *, now: float | None = None) -> bool:
    """Take a started, unexpired flow for its callback (`exchanging`); False when another
    callback took it first, or it expired or ended."""
    at = time.time() if now is None else now
    updated = conn.execute(
        sa.update(oauth_flows)
        .where(
            oauth_flows.c.id == flow_id,
            oauth_flows.c.status == "started",
            oauth_flows.c.expires_at > at,
        )
        .values(status="exchanging")
    )
    return updated.rowcount == 1


def finish_flow(
    conn: sa.Connection,
    flow_id: str,
    status: Literal["connected", "failed"],
    *,
    connected_account: str | None = None,
    error: str | None = None,
    now: float | None = None,
    only_open: bool = False,
) -> None:
    """Record how a flow ended; its verifier is dropped (it is of no use any more).
    `only_open`: only a flow not yet claimed by a callback (ticket or started) changes."""
    update = sa.update(oauth_flows).where(oauth_flows.c.id == flow_id)
    if only_open:
        update = update.where(oauth_flows.c.status.in_(["ticket", "started"]))
    conn.execute(
        update.values(
            status=status,
            connected_account=connected_account,
            error=None if error is None else error[:2000],
            verifier=None,
            finished_at=time.time() if now is None else now,
        )
    )


def prune_flows(conn: sa.Connection, *, older_than: float) -> int:
    """Delete flows made before `older_than` (epoch seconds); how many went."""
    deleted = conn.execute(sa.delete(oauth_flows).where(oauth_flows.c.created_at < older_than))
    return int(deleted.rowcount or 0)
