"""What each connection of interlink.yaml is, whether it is switched on, how its last runs
went, and the state of its stored tokens.

```python
for connection in describe_connections(config, store.engine):
    print(connection["name"], connection["enabled"], connection["last_success"])
```

Nothing secret is read: the vault's listing carries no ciphertext, and the vault is never
opened. "Last success" and "last error" are the newest runs of the pipelines whose source
or destination resource belongs to the connection, for any of its accounts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.store import Switch, TokenInfo, list_switches, list_tokens, metadata

__all__ = [
    "FAILED_RUN_STATUSES",
    "SUCCEEDED_RUN_STATUSES",
    "connection_pipelines",
    "describe_connections",
]

SUCCEEDED_RUN_STATUSES = ("succeeded", "completed_with_errors")
"""Runs that got through the connection (some records may have failed on their own)."""
FAILED_RUN_STATUSES = ("failed", "crashed")
"""Runs that ended in an error (a cancelled run is neither)."""


def connection_pipelines(config: InterlinkConfig) -> dict[str, list[str]]:
    """The pipelines that read from or write to each connection, by connection name."""
    found: dict[str, list[str]] = {name: [] for name in config.connections}
    for name, pipeline in config.pipelines.items():
        owners = {pipeline.source.partition(".")[0]}
        if pipeline.destination.resource is not None:
            owners.add(pipeline.destination.resource.partition(".")[0])
        for owner in sorted(owners):
            found.setdefault(owner, []).append(name)
    return found


def _switched(switch: Switch | None) -> dict[str, Any] | None:
    if switch is None:
        return None
    return {"reason": switch.reason, "since": switch.disabled_at, "by": switch.disabled_by}


def _newest(conn: sa.Connection, pipelines: list[str], statuses: Iterable[str]) -> Any:
    if not pipelines:
        return None
    runs = metadata.tables["interlink_runs"]
    # A run for one connected account is kept as `PIPELINE@ACCOUNT`.
    named = [runs.c.pipeline.in_(pipelines)] + [
        runs.c.pipeline.startswith(f"{name}@", autoescape=True) for name in pipelines
    ]
    query = (
        sa.select(runs.c.id, runs.c.pipeline, runs.c.status, runs.c.finished_at, runs.c.message)
        .where(sa.or_(*named), runs.c.status.in_(list(statuses)))
        .order_by(runs.c.id.desc())
        .limit(1)
    )
    return conn.execute(query).first()


def _run(row: Any, *, message: bool) -> dict[str, Any] | None:
    if row is None:
        return None
    shown: dict[str, Any] = {
        "run_id": row.id,
        "pipeline": row.pipeline,
        "status": row.status,
        "finished_at": row.finished_at,
    }
    if message:
        shown["message"] = row.message
    return shown


def _account(info: TokenInfo | None, account: str, switch: Switch | None) -> dict[str, Any]:
    return {
        "account": account,
        "status": info.status if info is not None else "no_token",
        "enabled": switch is None,
        "disabled": _switched(switch),
        "expires_at": info.expires_at if info is not None else None,
        "updated_at": info.updated_at if info is not None else None,
        "last_error": info.last_error if info is not None else None,
    }


def describe_connections(config: InterlinkConfig, engine: sa.Engine) -> list[dict[str, Any]]:
    """Every connection, in interlink.yaml's order: its name, auth type, whether it is
    switched on (and if not, why, since when and by whom), its last successful and last
    failed run, and, for `oauth2` connections, each stored account (switched on or not,
    status, token expiry, last change, last error)."""
    stored: dict[str, dict[str, TokenInfo]] = {}
    for info in list_tokens(engine):
        stored.setdefault(info.connection, {})[info.account] = info
    switches: dict[tuple[str, str], Switch] = {
        (switch.connection, switch.account): switch for switch in list_switches(engine)
    }
    pipelines = connection_pipelines(config)
    described: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for name, connection in config.connections.items():
            tokens = stored.get(name, {})
            # An account switched off shows even when it has no token (any more).
            names = sorted(
                {*tokens, *(account for (owner, account) in switches if owner == name and account)}
            )
            own = switches.get((name, ""))
            described.append(
                {
                    "name": name,
                    "auth": connection.auth.type,
                    "enabled": own is None,
                    "disabled": _switched(own),
                    "last_success": _run(
                        _newest(conn, pipelines.get(name, []), SUCCEEDED_RUN_STATUSES),
                        message=False,
                    ),
                    "last_error": _run(
                        _newest(conn, pipelines.get(name, []), FAILED_RUN_STATUSES),
                        message=True,
                    ),
                    "accounts": [
                        _account(tokens.get(account), account, switches.get((name, account)))
                        for account in names
                    ],
                }
            )
    return described
