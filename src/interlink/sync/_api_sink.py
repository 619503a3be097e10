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

A binding keeps the version the target was left at: the timestamp field of
`timestamps.target`, or else a hash of the mapped fields' values on the target. It comes
from the API's answer to the write; an answer that is not the record (204 No Content, or
a body without the timestamp or the written fields) is read back, and when that read
fails too, a hash of the fields written stands in (`fields:...`): the next run compares
the target's current values of those fields against it. A binding without a version
(saved by an older interlink) counts as a target change, so a policy other than
`source_wins` settles it instead of writing over the target.

A failed record is returned with its error; the others go on. Bindings and conflicts are
returned to the runner, which commits them with the checkpoint once every write of the
batch was acknowledged.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from interlink.config import PipelineConfig
from interlink.connectors import Record, RestResource
from interlink.errors import ApiError
from interlink.store import Binding, Store, add_conflict, load_bindings, save_bindings

from ._conflicts import changed_since, decide
from ._sink import BatchCounts, WritePlan

__all__ = ["ApiSink", "BatchOutcome"]


def _fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha1(orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[
        :20
    ]


_NOT_FIELDS = ("id", "type", "relationships")
_CONTENT = "fields:"
"""Prefixes a version made of the written fields' values (see `version_after_write`)."""


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
    """Writes mapped records to a REST/JSON:API resource; see the module docstring.

    It is a `Sink`: `send` makes a batch's API calls, `commit` saves its bindings and
    parked conflicts in the batch's transaction.
    """

    verbatim = False

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
        self.resource = target
        self.target = pipeline.destination.resource or name
        """What the run's summary calls the destination (`commerce.customers`)."""
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
        """The version to bind a target record at: its timestamp field, or a hash of its
        mapped fields when no timestamp is configured (or the record has none); None for
        no record."""
        if not target:
            return None
        return self._version_now(target, target)

    def _target_version(self, target: Record | None) -> str | None:
        if not target:
            return None
        stamp = self.pipeline.timestamps.target
        if stamp:
            value = target.get(stamp)
            return None if value is None else str(value)
        keys = self.fields or [k for k in target if k not in _NOT_FIELDS]
        return _fingerprint({k: target.get(k) for k in keys})

    def _keys(self, mapped: Record) -> list[str]:
        """The fields interlink writes: what a version made of field values covers."""
        return list(self.fields) if self.fields else [k for k in mapped if k not in _NOT_FIELDS]

    def _content_version(self, values: Record, keys: list[str]) -> str:
        return _CONTENT + _fingerprint({k: values.get(k) for k in keys})

    def _version_now(self, target: Record, mapped: Record) -> str:
        """The target's version: its own, or its written fields' values when it has none."""
        version = self._target_version(target)
        return version if version is not None else self._content_version(target, self._keys(mapped))

    def _current_version(self, target: Record | None, previous: str, mapped: Record) -> str | None:
        """The target's version now, in the form `previous` was saved in (None: unknown)."""
        if not target:
            return None
        if previous.startswith(_CONTENT):
            return self._content_version(target, self._keys(mapped))
        return self._target_version(target)

    def _answer_version(self, answer: Record, mapped: Record) -> str | None:
        """The version a create or update answer shows, None when it is not the record
        (no body, or not the timestamp or every written field)."""
        if not answer:
            return None
        if not self.pipeline.timestamps.target and not all(k in answer for k in self._keys(mapped)):
            return None
        return self._target_version(answer)

    async def version_after_write(self, target_key: str, mapped: Record, answer: Record) -> str:
        """The version to bind the target at after writing `mapped` to it (`answer` is
        what the API answered, `{}` for no body).

        From the answer when it is the record; else read back; when the record cannot be
        read, the written fields' values, which the next run compares the target's current
        values of the same fields against.
        """
        version = self._answer_version(answer, mapped)
        if version is not None:
            return version
        if self.pipeline.conflict == "source_wins":
            # Never compared while the source wins: not worth a read per record.
            return self._content_version(mapped, self._keys(mapped))
        try:
            target = await self.resource.get(target_key)
        except ApiError:
            target = {}
        if target:
            return self._version_now(target, mapped)
        return self._content_version(mapped, self._keys(mapped))

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
                async for record in self.resource.records():
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
            target = await self.resource.get(target_key)
        if previous is None:
            # Just matched: both sides have data we have never reconciled.
            target_changed = policy != "source_wins"
        elif policy == "source_wins":
            target_changed = False  # not read: the source wins either way
        else:
            saved = previous.target_version
            current = None if saved is None else self._current_version(target, saved, mapped)
            target_changed = changed_since(saved, current)
        stamps = self.pipeline.timestamps
        decision = decide(
            policy,
            source_changed=True,
            target_changed=target_changed,
            source_time=source.get(stamps.source) if stamps.source else None,
            target_time=target.get(stamps.target) if (target and stamps.target) else None,
        )
        if decision == "write":
            written = await self.resource.update(target_key, mapped)
            bound_at = await self.version_after_write(target_key, mapped, written)
            outcome.updated += 1
            outcome.bindings.append(Binding(key, target_key, version, bound_at))
        elif decision == "keep":
            assert target is not None  # a policy that keeps the target has read it
            outcome.skipped += 1
            outcome.bindings.append(
                Binding(key, target_key, version, self._version_now(target, mapped))
            )
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
            created = await self.resource.create(
                mapped, idempotency_key=self._idempotency_key(key, version)
            )
            target_key = created.get(self.resource.primary_key)
            if target_key is None:
                raise ValueError(f"the create answer has no {self.resource.primary_key!r}")
            self._remember(created)
            bound_at = await self.version_after_write(str(target_key), mapped, created)
            outcome.created += 1
            outcome.bindings.append(Binding(key, str(target_key), version, bound_at))

    async def write(self, items: list[tuple[Record, Record]]) -> BatchOutcome:
        """Write a batch of (source record, mapped record) pairs; failures come back."""
        outcome = BatchOutcome()
        keys = [str(s.get(self.source_key)) for s, _ in items]
        # A database read: in a thread, so the event loop (a server's API) never waits on it.
        bound = await asyncio.to_thread(load_bindings, self.store.engine, self.name, keys)

        async def guarded(source: Record, mapped: Record) -> None:
            try:
                await self._one(outcome, source, mapped, bound)
            except Exception as exc:  # recorded against the record; the batch goes on
                outcome.failures.append((source.get(self.source_key), "write", exc))

        await asyncio.gather(*(guarded(s, m) for s, m in items))
        return outcome

    # -- the Sink protocol -------------------------------------------------------------------

    def rejects(self, record: Record) -> str | None:
        """Nothing is rejected before the API sees it: the API says what it refuses."""
        return None

    def any_rejected(self, records: Sequence[Record]) -> bool:
        return False

    def start(self, conn: sa.Connection, plan: WritePlan, run_id: int) -> None:
        """Nothing to set up: bindings and conflicts live in interlink's own tables."""

    async def send(self, items: list[tuple[Record, Record]]) -> BatchOutcome:
        """The batch's API calls (see `write`); every one answered before this returns."""
        return await self.write(items)

    def commit(self, conn: sa.Connection, sent: BatchOutcome, run_id: int) -> BatchCounts:
        """Save the batch's bindings and parked conflicts in the caller's transaction."""
        save_bindings(conn, self.name, sent.bindings)
        for parked in sent.conflicts:
            add_conflict(conn, self.name, run_id=run_id, **parked)
        return BatchCounts(
            created=sent.created,
            updated=sent.updated,
            unchanged=sent.unchanged,
            skipped=sent.skipped,
            failures=list(sent.failures),
        )

    def finish(self, conn: sa.Connection, *, complete: bool, failed: int, run_id: int) -> int:
        """Nothing to swap or delete at an API destination."""
        return 0

    def discard(self, conn: sa.Connection) -> None:
        """Nothing was staged."""
