"""The API destination: create or update each record on a writable resource, through
bindings that remember which target record each source record became.

Per record of a batch (at most `concurrency` at once, inside the connection's rate limit):

- bound, and the source did not change since the last sync: nothing to send;
- bound and changed: update the target with the mapped fields only; with a policy other
  than `source_wins`, read the target first and settle a two-sided change by the policy;
- unbound, with `match:` fields: bind to the target record with the same values (an
  index of the target built on first need) and settle as above;
- unbound and unmatched: create it, with an idempotency key made from the pipeline, the
  source key and the source version, so a batch replayed after a crash creates nothing
  twice on an API that honours the key.

A failed record is returned with its error; the others go on. Bindings and conflicts are
returned to the runner, which commits them with the checkpoint once every write of the
batch was acknowledged.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from interlink.config import PipelineConfig
from interlink.connectors import Record, RestResource
from interlink.store import Binding, Store, add_conflict, load_bindings, save_bindings

from ._conflicts import decide

__all__ = ["ApiSink", "BatchOutcome"]


def _fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha1(orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[
        :20
    ]


def _match_value(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


@dataclass
class BatchOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    bindings: list[Binding] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[Any, str, BaseException]] = field(default_factory=list)


class ApiSink:
    """Writes mapped records to a REST/JSON:API resource; see the module docstring."""

    def __init__(
        self,
        store: Store,
        name: str,
        pipeline: PipelineConfig,
        target: RestResource,
        *,
        source_key: str,
        fields: list[str] | None,
    ) -> None:
        self.store = store
        self.name = name
        self.pipeline = pipeline
        self.target = target
        self.source_key = source_key
        self.fields = fields
        self._gate = asyncio.Semaphore(pipeline.concurrency)
        self._index: dict[tuple[Any, ...], Record] | None = None
        self._index_lock = asyncio.Lock()

    # -- versions ---------------------------------------------------------------------------

    def _source_version(self, source: Record, mapped: Record) -> str:
        stamp = self.pipeline.timestamps.source
        if stamp and source.get(stamp) is not None:
            return str(source[stamp])
        return _fingerprint(mapped)

    def target_version(self, target: Record | None) -> str | None:
        """The version of a target record: its timestamp field, or a hash of its mapped
        fields when no timestamp is configured."""
        return self._target_version(target)

    def _target_version(self, target: Record | None) -> str | None:
        if not target:
            return None
        stamp = self.pipeline.timestamps.target
        if stamp:
            value = target.get(stamp)
            return None if value is None else str(value)
        keys = self.fields or [k for k in target if k not in ("id", "type", "relationships")]
        return _fingerprint({k: target.get(k) for k in keys})

    def _idempotency_key(self, source_key: str, version: str) -> str:
        raw = f"{self.name}\0{source_key}\0{version}".encode()
        return "interlink-" + hashlib.sha256(raw).hexdigest()[:40]

    # -- matching ---------------------------------------------------------------------------

    async def _match(self, mapped: Record) -> Record | None:
        fields = self.pipeline.match
        if not fields:
            return None
        async with self._index_lock:
            if self._index is None:
                index: dict[tuple[Any, ...], Record] = {}
                async for record in self.target.records():
                    key = tuple(_match_value(record.get(f)) for f in fields)
                    if all(v is not None for v in key):
                        index.setdefault(key, record)
                self._index = index
        wanted = tuple(_match_value(mapped.get(f)) for f in fields)
        if any(v is None for v in wanted):
            return None
        return self._index.get(wanted)

    def _remember(self, record: Record) -> None:
        if self._index is not None and self.pipeline.match:
            key = tuple(_match_value(record.get(f)) for f in self.pipeline.match)
            if all(v is not None for v in key):
                self._index.setdefault(key, record)

    # -- one record -------------------------------------------------------------------------

    async def _settle(
        self,
        outcome: BatchOutcome,
        source: Record,
        mapped: Record,
        key: str,
        version: str,
        target_key: str,
        previous: Binding | None,
        target: Record | None,
    ) -> None:
        """A bound (or just matched) record whose source changed: write, keep or park."""
        policy = self.pipeline.conflict
        if target is None and policy != "source_wins":
            target = await self.target.get(target_key)
        current = self._target_version(target)
        if previous is None:
            # Just matched: both sides have data we have never reconciled.
            target_changed = policy != "source_wins"
        else:
            target_changed = (
                previous.target_version is not None
                and current is not None
                and current != previous.target_version
            )
        stamps = self.pipeline.timestamps
        decision = decide(
            policy,
            source_changed=True,
            target_changed=target_changed,
            source_time=source.get(stamps.source) if stamps.source else None,
            target_time=target.get(stamps.target) if (target and stamps.target) else None,
        )
        if decision == "write":
            written = await self.target.update(target_key, mapped)
            outcome.updated += 1
            outcome.bindings.append(
                Binding(key, target_key, version, self._target_version(written or None))
            )
        elif decision == "keep":
            outcome.skipped += 1
            outcome.bindings.append(Binding(key, target_key, version, current))
        else:
            outcome.skipped += 1
            outcome.conflicts.append(
                {
                    "source_key": key,
                    "target_key": target_key,
                    "source_version": version,
                    "source_record": mapped,
                    "target_record": target or {},
                }
            )

    async def _one(
        self,
        outcome: BatchOutcome,
        source: Record,
        mapped: Record,
        bound: dict[str, Binding],
    ) -> None:
        key = str(source.get(self.source_key))
        version = self._source_version(source, mapped)
        binding = bound.get(key)
        async with self._gate:
            if binding is not None:
                if binding.source_version == version:
                    outcome.unchanged += 1
                    return
                await self._settle(
                    outcome, source, mapped, key, version, binding.target_key, binding, None
                )
                return
            match = await self._match(mapped)
            if match is not None:
                await self._settle(
                    outcome, source, mapped, key, version, str(match.get("id")), None, match
                )
                return
            created = await self.target.create(
                mapped, idempotency_key=self._idempotency_key(key, version)
            )
            target_key = created.get(self.target.primary_key)
            if target_key is None:
                raise ValueError(f"the create answer has no {self.target.primary_key!r}")
            self._remember(created)
            outcome.created += 1
            outcome.bindings.append(
                Binding(key, str(target_key), version, self._target_version(created))
            )

    async def write(self, items: list[tuple[Record, Record]]) -> BatchOutcome:
        """Write a batch of (source record, mapped record) pairs; failures come back."""
        outcome = BatchOutcome()
        bound = load_bindings(
            self.store.engine, self.name, (str(s.get(self.source_key)) for s, _ in items)
        )

        async def guarded(source: Record, mapped: Record) -> None:
            try:
                await self._one(outcome, source, mapped, bound)
            except Exception as exc:  # recorded against the record; the batch goes on
                outcome.failures.append((source.get(self.source_key), "write", exc))

        await asyncio.gather(*(guarded(s, m) for s, m in items))
        return outcome

    def commit(self, conn: sa.Connection, outcome: BatchOutcome, run_id: int) -> None:
        """Save the batch's bindings and parked conflicts in the caller's transaction."""
        save_bindings(conn, self.name, outcome.bindings)
        for parked in outcome.conflicts:
            add_conflict(conn, self.name, run_id=run_id, **parked)
