"""Bindings (source record <-> target record, per pipeline) and parked conflicts.

A binding whose target key is empty (`PENDING`) is a create that was sent (or was about
to be) but whose answer was never bound: it keeps the source version the create's
idempotency key was made from and the body sent, so the next run can send the very same
create again (same key, same body) instead of creating the record a second time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from ._schema import bindings, conflicts

__all__ = [
    "CLAIM_LEASE",
    "PENDING",
    "Binding",
    "add_conflict",
    "bound_sources",
    "claim_conflict",
    "conflict",
    "drop_pending",
    "forget_bindings",
    "list_bindings",
    "list_conflicts",
    "load_bindings",
    "pending_body",
    "release_conflict",
    "resolve_conflict",
    "save_bindings",
    "save_pending",
]

PENDING = ""
"""The target key of a create not yet bound (see the module docstring)."""


@dataclass(frozen=True)
class Binding:
    """Source record `source_key` is target record `target_key`, as of the last sync."""

    source_key: str
    target_key: str
    source_version: str | None
    target_version: str | None

    @property
    def pending(self) -> bool:
        """A create sent but never bound: `target_version` holds the body it sent."""
        return self.target_key == PENDING


def pending_body(binding: Binding) -> dict[str, Any]:
    """The body a pending create sent (see `save_pending`)."""
    body: dict[str, Any] = orjson.loads(binding.target_version or "{}")
    return body


def save_pending(
    engine: sa.Engine,
    pipeline: str,
    creates: Sequence[tuple[str, str, dict[str, Any]]],
    *,
    replace: bool = False,
) -> None:
    """Note (source key, source version, body) of creates about to be sent, in a
    transaction of their own committed before they go out; a key bound already is left as
    it is, and so is a pending one unless `replace`."""
    if not creates:
        return
    now = time.time()
    values = [
        {
            "pipeline": pipeline,
            "source_key": key,
            "target_key": PENDING,
            "source_version": version,
            "target_version": orjson.dumps(body, default=str).decode(),
            "synced_at": now,
        }
        for key, version, body in creates
    ]
    with engine.begin() as conn:
        statement = _insert(conn.dialect.name)
        if replace:
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[bindings.c.pipeline, bindings.c.source_key],
                    set_={
                        name: statement.excluded[name]
                        for name in ("source_version", "target_version", "synced_at")
                    },
                    where=bindings.c.target_key == PENDING,
                ),
                values,
            )
        else:
            conn.execute(statement.on_conflict_do_nothing(), values)


def _insert(dialect: str) -> Any:
    """An INSERT into the bindings with ON CONFLICT, in `dialect`'s own construct (only
    that dialect is loaded: a SQLite process never loads PostgreSQL's)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(bindings)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(bindings)


def drop_pending(conn: sa.Connection, pipeline: str, keys: Sequence[str]) -> None:
    """Forget pending creates the API refused (it created nothing), in the caller's
    transaction; bound keys are left as they are."""
    for start in range(0, len(keys), 500):
        conn.execute(
            sa.delete(bindings).where(
                bindings.c.pipeline == pipeline,
                bindings.c.source_key.in_(keys[start : start + 500]),
                bindings.c.target_key == PENDING,
            )
        )


def bound_sources(engine: sa.Engine, pipeline: str, target_keys: Iterable[str]) -> dict[str, str]:
    """Target key -> the source key bound to it, for these target keys."""
    wanted = list(dict.fromkeys(target_keys))
    found: dict[str, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            rows = conn.execute(
                sa.select(bindings.c.target_key, bindings.c.source_key).where(
                    bindings.c.pipeline == pipeline,
                    bindings.c.target_key.in_(wanted[start : start + 500]),
                )
            )
            for row in rows:
                found.setdefault(row.target_key, row.source_key)
    return found


def pending_keys(conn: sa.Connection, pipeline: str) -> list[str]:
    """The source keys of the pipeline's pending creates (sent, answer never seen)."""
    rows = conn.execute(
        sa.select(bindings.c.source_key)
        .where(bindings.c.pipeline == pipeline, bindings.c.target_key == PENDING)
        .order_by(bindings.c.source_key)
    )
    return [row.source_key for row in rows]


def load_bindings(engine: sa.Engine, pipeline: str, keys: Iterable[str]) -> dict[str, Binding]:
    """The bindings of these source keys (one query per 500 keys)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, Binding] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = conn.execute(
                sa.select(bindings).where(
                    bindings.c.pipeline == pipeline, bindings.c.source_key.in_(chunk)
                )
            )
            for row in rows:
                found[row.source_key] = Binding(
                    row.source_key, row.target_key, row.source_version, row.target_version
                )
    return found


def list_bindings(
    engine: sa.Engine, pipeline: str, keys: Sequence[str] = (), *, limit: int = 50
) -> list[tuple[Binding, float]]:
    """The pipeline's bindings with when each was last synced, by source key: those of
    `keys` (one query per 500), or the first `limit` of all."""
    query = sa.select(bindings).where(bindings.c.pipeline == pipeline)
    if keys:
        wanted = list(dict.fromkeys(keys))
        chunks = [wanted[start : start + 500] for start in range(0, len(wanted), 500)]
        queries = [query.where(bindings.c.source_key.in_(chunk)) for chunk in chunks]
    else:
        queries = [query.order_by(bindings.c.source_key).limit(limit)]
    found: list[tuple[Binding, float]] = []
    with engine.connect() as conn:
        for statement in queries:
            found.extend(
                (
                    Binding(row.source_key, row.target_key, row.source_version, row.target_version),
                    row.synced_at,
                )
                for row in conn.execute(statement)
            )
    return sorted(found, key=lambda item: item[0].source_key)


def forget_bindings(conn: sa.Connection, pipeline: str, keys: Sequence[str]) -> int:
    """Delete the bindings of these source keys in the caller's transaction; how many
    there were."""
    forgotten = 0
    for start in range(0, len(keys), 500):
        result = conn.execute(
            sa.delete(bindings).where(
                bindings.c.pipeline == pipeline,
                bindings.c.source_key.in_(list(keys[start : start + 500])),
            )
        )
        forgotten += max(result.rowcount, 0)
    return forgotten


def save_bindings(conn: sa.Connection, pipeline: str, rows: Sequence[Binding]) -> None:
    """Insert or update bindings in the caller's transaction (one upsert for the batch;
    of two rows for one source key, the later wins: an upsert may touch a row once)."""
    if not rows:
        return
    rows = list({b.source_key: b for b in rows}.values())
    now = time.time()
    values = [
        {
            "pipeline": pipeline,
            "source_key": b.source_key,
            "target_key": b.target_key,
            "source_version": b.source_version,
            "target_version": b.target_version,
            "synced_at": now,
        }
        for b in rows
    ]
    statement = _insert(conn.dialect.name)
    changed = ("target_key", "source_version", "target_version", "synced_at")
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[bindings.c.pipeline, bindings.c.source_key],
            set_={name: statement.excluded[name] for name in changed},
        ),
        values,
    )


def add_conflict(
    conn: sa.Connection,
    pipeline: str,
    *,
    source_key: str,
    target_key: str,
    source_version: str | None,
    source_record: dict[str, Any],
    target_record: dict[str, Any],
    run_id: int | None,
) -> None:
    """Park a conflict for a person to settle (`conflict: manual`); one open per record."""
    open_already = conn.execute(
        sa.select(conflicts.c.id).where(
            conflicts.c.pipeline == pipeline,
            conflicts.c.source_key == source_key,
            conflicts.c.status == "open",
        )
    ).first()
    values = {
        "target_key": target_key,
        "source_version": source_version,
        "source_record": source_record,
        "target_record": target_record,
        "run_id": run_id,
        "created_at": time.time(),
    }
    if open_already is not None:
        conn.execute(sa.update(conflicts).where(conflicts.c.id == open_already.id).values(**values))
    else:
        conn.execute(
            sa.insert(conflicts).values(
                pipeline=pipeline, source_key=source_key, status="open", **values
            )
        )


def list_conflicts(
    engine: sa.Engine, pipeline: str | None = None, *, status: str | None = "open"
) -> list[dict[str, Any]]:
    query = sa.select(conflicts).order_by(conflicts.c.id)
    if pipeline is not None and "@" in pipeline:
        query = query.where(conflicts.c.pipeline == pipeline)
    elif pipeline is not None:
        # A pipeline's conflicts for every account: NAME and NAME@ACCOUNT.
        query = query.where(
            sa.or_(
                conflicts.c.pipeline == pipeline,
                conflicts.c.pipeline.startswith(f"{pipeline}@", autoescape=True),
            )
        )
    if status is not None:
        query = query.where(conflicts.c.status == status)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def conflict(engine: sa.Engine, conflict_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(conflicts).where(conflicts.c.id == conflict_id)).first()
    return dict(row._mapping) if row is not None else None


CLAIM_LEASE = 300.0
"""Seconds a claim on a conflict lasts: a resolver that died leaves it claimable after."""


def claim_conflict(conn: sa.Connection, conflict_id: int, *, now: float | None = None) -> bool:
    """Take an open conflict for resolving (`resolving`; its claim time in resolved_at),
    or one whose resolver has held it past CLAIM_LEASE; False when another resolver has
    it or it is resolved. One conditional UPDATE: of two racing resolves, one wins."""
    at = time.time() if now is None else now
    claimed = conn.execute(
        sa.update(conflicts)
        .where(
            conflicts.c.id == conflict_id,
            sa.or_(
                conflicts.c.status == "open",
                sa.and_(
                    conflicts.c.status == "resolving",
                    conflicts.c.resolved_at < at - CLAIM_LEASE,
                ),
            ),
        )
        .values(status="resolving", resolved_at=at)
    )
    return claimed.rowcount == 1


def release_conflict(conn: sa.Connection, conflict_id: int) -> None:
    """Give a claimed conflict back (the resolve failed): open again."""
    conn.execute(
        sa.update(conflicts)
        .where(conflicts.c.id == conflict_id, conflicts.c.status == "resolving")
        .values(status="open", resolved_at=None)
    )


def resolve_conflict(conn: sa.Connection, conflict_id: int, resolution: str) -> None:
    conn.execute(
        sa.update(conflicts)
        .where(conflicts.c.id == conflict_id)
        .values(status="resolved", resolution=resolution, resolved_at=time.time())
    )
