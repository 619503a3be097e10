"""Forget bindings by hand: `interlink bindings forget PIPELINE KEY...`.

A binding ties a source record to the target record an API pipeline created or matched
for it. When that target record is gone (deleted at the target), every later update of
the source record fails on the 404, and interlink never creates it again on its own:
forgetting the binding makes the next run treat the source record as new (matched again
by `match:` fields, else created).

The pipeline's lock is held while the bindings are deleted (as `BINDINGS_HOLDER`), as a
run takes it: a run binding the same records meanwhile would otherwise write a binding
this then deletes, or the other way round. A pending binding (a create sent whose answer
was never seen) is kept unless asked: the next run sends that very create again with the
same idempotency key, and forgetting it would let the record be created twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from interlink.config import InterlinkConfig, PipelineConfig
from interlink.errors import ConfigError
from interlink.store import (
    BINDINGS_HOLDER,
    LOCK_LEASE,
    Store,
    forget_bindings,
    load_bindings,
)

from ._accounts import split_key
from ._lease import take_lock_for

__all__ = ["Forgotten", "bindings_pipeline", "forget"]


@dataclass
class Forgotten:
    """What `forget` did: the source keys whose bindings it deleted, those it kept
    (pending creates, without `pending=True`) and those that had none."""

    forgotten: list[str] = field(default_factory=list)
    kept_pending: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def bindings_pipeline(config: InterlinkConfig, name: str) -> PipelineConfig:
    """Pipeline `name`, which must be one that keeps bindings (an API destination);
    ConfigError naming the key otherwise."""
    pipeline = config.pipelines.get(name)
    if pipeline is None:
        known = ", ".join(sorted(config.pipelines)) or "none"
        raise ConfigError(f"no pipeline {name!r} (pipelines: {known})", key="pipelines")
    if pipeline.destination.resource is None:
        raise ConfigError(
            f"pipeline {name!r} writes a table: only API pipelines keep bindings",
            key=f"pipelines.{name}.destination",
        )
    return pipeline


def forget(
    config: InterlinkConfig,
    store: Store,
    key: str,
    source_keys: Sequence[str],
    *,
    pending: bool = False,
) -> Forgotten:
    """Delete the bindings of `source_keys` of pipeline `key` (`NAME` or `NAME@ACCOUNT`)
    under the pipeline's lock; see the module docstring."""
    name, _ = split_key(key)
    bindings_pipeline(config, name)
    wanted = list(dict.fromkeys(source_keys))
    take_lock_for(store, key, BINDINGS_HOLDER, "its bindings cannot be changed")
    try:
        found = load_bindings(store.engine, key, wanted)
        result = Forgotten(unknown=[k for k in wanted if k not in found])
        for source_key in wanted:
            binding = found.get(source_key)
            if binding is None:
                continue
            if binding.pending and not pending:
                result.kept_pending.append(source_key)
            else:
                result.forgotten.append(source_key)
        if result.forgotten:
            with store.transaction() as conn:
                # Still the pipeline's holder, or nothing is deleted (LeaseLostError).
                store.hold_lock(conn, key, BINDINGS_HOLDER, LOCK_LEASE)
                forget_bindings(conn, key, result.forgotten)
        return result
    finally:
        store.release_lock(key, BINDINGS_HOLDER)
