"""Settle a parked conflict by hand: `interlink conflicts resolve ID --take source|target`."""

from __future__ import annotations

from typing import Any, Literal

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import ConfigError
from interlink.store import (
    LOCK_LEASE,
    Binding,
    Store,
    claim_conflict,
    conflict,
    release_conflict,
    resolve_conflict,
    save_bindings,
)

from ._accounts import split_key
from ._api_sink import ApiSink
from ._lease import LeaseKeeper, take_lock_for
from ._mapping import compile_mapping

__all__ = ["resolve"]


async def resolve(
    config: InterlinkConfig,
    store: Store,
    catalog: Catalog,
    conflict_id: int,
    take: Literal["source", "target"],
) -> dict[str, Any]:
    """Apply the chosen side and bind the pair at the versions now on both sides.

    `source`: the parked source record (mapped fields only) is written to the target.
    `target`: the target stays as it is. Either way the next run sees both sides as synced.
    The pipeline's lock is held throughout (as `-conflict_id`): no run of the pipeline
    writes meanwhile, and the resolution is refused while one runs.
    """
    parked = conflict(store.engine, conflict_id)
    if parked is None:
        raise ConfigError(f"no conflict with id {conflict_id}", key="conflicts")
    if parked["status"] == "resolved":
        raise ConfigError(
            f"conflict {conflict_id} is already resolved ({parked['resolution']})",
            key="conflicts",
        )
    key = parked["pipeline"]  # `NAME`, or `NAME@ACCOUNT` for a connected account's run
    name, _ = split_key(key)
    pipeline = config.pipelines.get(name)
    if pipeline is None or pipeline.destination.resource is None:
        raise ConfigError(f"pipeline {name!r} is no longer an API pipeline", key="pipelines")
    # The pipeline's lock, as a run takes it: a run writing the same pair meanwhile could
    # bind it at versions this resolution then overwrites, or write over what it wrote.
    holder = -conflict_id
    take_lock_for(store, key, holder, f"conflict {conflict_id} cannot be resolved")
    try:
        with store.transaction() as conn:
            claimed = claim_conflict(conn, conflict_id)
        if not claimed:
            raise ConfigError(
                f"conflict {conflict_id} is being resolved by someone else, or was just "
                "resolved; look again",
                key="conflicts",
            )
        try:
            async with LeaseKeeper(store, key, holder, lease=LOCK_LEASE):
                return await _apply(store, catalog, parked, key, name, pipeline, take, conflict_id)
        except BaseException:
            with store.transaction() as conn:
                release_conflict(conn, conflict_id)
            raise
    finally:
        store.release_lock(key, holder)


async def _apply(
    store: Store,
    catalog: Catalog,
    parked: dict[str, Any],
    key: str,
    name: str,
    pipeline: Any,
    take: Literal["source", "target"],
    conflict_id: int,
) -> dict[str, Any]:
    """Write the chosen side of a claimed conflict and settle it."""
    target = catalog.writable(pipeline.destination.resource)
    sink = ApiSink(
        store,
        key,
        pipeline,
        target,
        source_key=catalog.resource(pipeline.source).primary_key,
        fields=compile_mapping(pipeline.fields, where=f"pipelines.{name}.fields").fields,
    )
    version: str | None
    if take == "source":
        written = await target.update(parked["target_key"], parked["source_record"])
        version = await sink.version_after_write(
            parked["target_key"], parked["source_record"], written
        )
    else:
        version = sink.target_version(await target.get(parked["target_key"]))
    with store.transaction() as conn:
        # Still the pipeline's holder, or nothing is recorded (LeaseLostError).
        store.hold_lock(conn, key, -conflict_id, LOCK_LEASE)
        save_bindings(
            conn,
            key,
            [
                Binding(
                    parked["source_key"], parked["target_key"], parked["source_version"], version
                )
            ],
        )
        resolve_conflict(conn, conflict_id, take)
    resolved = conflict(store.engine, conflict_id)
    assert resolved is not None
    return resolved
