"""The API destination: create or update each record on a writable resource, through
bindings that remember which target record each source record became.

Per record of a batch (at most `concurrency` at once, inside the connection's rate limit):

- bound, and the source did not change since the last sync: nothing to send;
- bound and changed: update the target with the mapped fields only; with a policy other
  than `source_wins`, read the target first and settle a two-sided change by the policy;
- unbound, with `match:` fields: bind to the target record with the same values (an
  index of the target built on first need) and settle as above;
- unbound and unmatched: create it, with an idempotency key made from the pipeline, the
  source key, the source version and the body sent, so a batch replayed after a crash
  creates nothing twice on an API that honours the key. Before the creates go out, each
  is noted as a pending binding (its version and body, committed on their own): a create
  whose answer was lost, or whose binding never committed, is sent again as it was (same
  key, same body) by the next run, even when the source changed meanwhile, and the change
  is then written as an update. An API that does not honour idempotency keys creates such a
  record twice unless `match:` finds the first one; a create the API refused (4xx) leaves
  no pending binding.

A source record that appears more than once in a batch is written once, from its last
copy (the others count as unchanged). A target record is bound to one source record: a
record whose `match:` finds a target bound to another source record fails and says so.

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from interlink.config import PipelineConfig
from interlink.connectors import Record, RestResource
from interlink.errors import ApiError, NotFoundError, SyncError
from interlink.store import (
    Binding,
    Store,
    add_conflict,
    bound_sources,
    drop_pending,
    load_bindings,
    pending_body,
    pending_keys,
    save_bindings,
    save_pending,
)

from ._api_versions import Versions, fingerprint
from ._conflicts import changed_since, decide
from ._sink import BatchCounts, WritePlan

__all__ = ["ApiSink", "BatchOutcome"]


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
    refused: list[str] = field(default_factory=list)
    """Source keys whose create the API refused: their pending bindings go."""


_BODY_REFUSED = (400, 413, 415, 422)
"""The answers that refuse a create for its body: a replayed create (same body) answered
so was refused the same way the first time. Any other answer (401, 403, 404, 409, 429...)
says nothing about the first send, so its pending create stays."""


def _refused(exc: BaseException) -> bool:
    """The API answered that it did not act on the request (a 4xx other than a timeout)."""
    status = getattr(exc, "status_code", None)
    return (
        isinstance(exc, ApiError) and status is not None and 400 <= status < 500 and status != 408
    )


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
        self.versions = Versions(pipeline, fields)
        self._gate = asyncio.Semaphore(pipeline.concurrency)
        self._index: dict[tuple[Any, ...], Record] | None = None
        self._index_lock = asyncio.Lock()
        self._claimed: dict[str, str] = {}
        """With `match:`: target key -> the source key this run bound it to."""
        self._plan: WritePlan | None = None
        self._read_pending: set[str] = set()
        """Source keys read by this run that had, or were left with, a pending create."""

    # -- versions (sync/_api_versions.py) ---------------------------------------------------

    def target_version(self, target: Record | None) -> str | None:
        """The version to bind a target record at: its timestamp field, or a hash of its
        mapped fields when no timestamp is configured (or the record has none); None for
        no record."""
        if not target:
            return None
        return self.versions.now(target, target)

    async def version_after_write(self, target_key: str, mapped: Record, answer: Record) -> str:
        """The version to bind the target at after writing `mapped` to it (`answer` is
        what the API answered, `{}` for no body).

        From the answer when it is the record; else read back; when the record cannot be
        read, the written fields' values, which the next run compares the target's current
        values of the same fields against.
        """
        version = self.versions.answer(answer, mapped)
        if version is not None:
            return version
        if self.pipeline.conflict == "source_wins":
            # Never compared while the source wins: not worth a read per record.
            return self.versions.content(mapped, self.versions.written_keys(mapped))
        try:
            target = await self.resource.get(target_key)
        except ApiError:
            target = {}
        if target:
            return self.versions.now(target, mapped)
        return self.versions.content(mapped, self.versions.written_keys(mapped))

    def _idempotency_key(self, source_key: str, version: str, body: Record) -> str:
        """The key of one create: the pipeline, the source key, the source version and the
        body sent. A create sent again (a pending one) sends the same body, so the same
        key; a version that is a timestamp with whole seconds can stay the same across an
        edit, and the body tells the two creates apart (an API refuses a key used with
        another body)."""
        raw = f"{self.name}\0{source_key}\0{version}\0{fingerprint(body)}".encode()
        return "interlink-" + hashlib.sha256(raw).hexdigest()[:40]

    # -- matching ---------------------------------------------------------------------------

    async def _match(self, mapped: Record) -> Record | None:
        fields = self.pipeline.match
        if not fields:
            return None
        await self._build_index()
        assert self._index is not None
        wanted = tuple(_match_value(mapped.get(f)) for f in fields)
        if any(v is None for v in wanted):
            return None
        return self._index.get(wanted)

    async def _build_index(self) -> None:
        """Read the whole target once. A read that fails or ends short fails the batch
        (and so the run): a record the index misses would be created a second time."""
        fields = self.pipeline.match
        async with self._index_lock:
            if self._index is None:
                index: dict[tuple[Any, ...], Record] = {}
                try:
                    async for page in self.resource.pages():
                        for record in page.records:
                            key = tuple(_match_value(record.get(f)) for f in fields)
                            if all(v is not None for v in key):
                                index.setdefault(key, record)
                        if page.done and not page.complete:
                            raise SyncError(
                                "; ".join(page.warnings) or "fewer records than announced"
                            )
                except Exception as exc:
                    raise SyncError(
                        f"match: {', '.join(fields)} needs every record of {self.target}, "
                        f"and reading them failed ({exc}): this batch was not written, since a "
                        "record the read missed would be created a second time; run again",
                        pipeline=self.name,
                    ) from exc
                self._index = index

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
        try:
            if target is None and policy != "source_wins":
                target = await self.resource.get(target_key)
            await self._decide_and_write(
                outcome, source, mapped, key, version, target_key, previous, target
            )
        except NotFoundError as exc:
            if previous is None:
                raise
            raise SyncError(
                f"{self.target} record {target_key!r}, bound to source record {key!r}, was "
                f"deleted at the target ({exc}); interlink does not create it again, as it "
                "may have been deleted on purpose: its binding stays, and the record fails "
                "until the binding is removed",
                pipeline=self.name,
            ) from exc

    async def _decide_and_write(
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
        policy = self.pipeline.conflict
        if previous is None:
            # Just matched: both sides have data we have never reconciled.
            target_changed = policy != "source_wins"
        elif policy == "source_wins":
            target_changed = False  # not read: the source wins either way
        else:
            saved = previous.target_version
            current = None if saved is None else self.versions.current(target, saved, mapped)
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
                Binding(key, target_key, version, self.versions.now(target, mapped))
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
        binding: Binding | None,
        match: Record | None,
    ) -> None:
        key = str(source.get(self.source_key))
        version = self.versions.source(source, mapped)
        async with self._gate:
            if binding is not None and not binding.pending:
                if binding.source_version == version:
                    outcome.unchanged += 1
                    return
                await self._settle(
                    outcome, source, mapped, key, version, binding.target_key, binding, None
                )
                return
            if match is not None:
                await self._settle(
                    outcome, source, mapped, key, version, str(match.get("id")), None, match
                )
                return
            if binding is not None and binding.source_version is not None:
                if await self._replay(outcome, source, mapped, key, version, binding):
                    return
                # Refused: nothing was created. What goes out now is the pending create.
                await asyncio.to_thread(
                    save_pending,
                    self.store.engine,
                    self.name,
                    [(key, version, mapped)],
                    replace=True,
                )
            try:
                created = await self.resource.create(
                    mapped, idempotency_key=self._idempotency_key(key, version, mapped)
                )
            except Exception as exc:
                if _refused(exc):
                    outcome.refused.append(key)
                raise
            target_key = self._created_key(created)
            bound_at = await self.version_after_write(target_key, mapped, created)
            outcome.created += 1
            outcome.bindings.append(Binding(key, target_key, version, bound_at))

    def _created_key(self, created: Record) -> str:
        target_key = created.get(self.resource.primary_key)
        if target_key is None:
            raise ValueError(
                f"the create answer of {self.target} has no {self.resource.primary_key!r}"
            )
        self._remember(created)
        return str(target_key)

    async def _replay(
        self,
        outcome: BatchOutcome,
        source: Record,
        mapped: Record,
        key: str,
        version: str,
        pending: Binding,
    ) -> bool:
        """Send a pending create again as it was (same key, same body); then write the
        source's later change, if any, as an update. False: the API refused it (it created
        nothing), so the record is to be created as it is now."""
        assert pending.source_version is not None
        body = pending_body(pending)
        try:
            created = await self.resource.create(
                body, idempotency_key=self._idempotency_key(key, pending.source_version, body)
            )
        except Exception as exc:
            # Refused for its body (400, 422...): the first send was refused the same way.
            # A 401/403 (credentials), 404, 409 (the key in use) or 429 says nothing about
            # the first send, which may have created the record: its pending create stays.
            if _refused(exc) and getattr(exc, "status_code", None) in _BODY_REFUSED:
                return False
            raise
        target_key = self._created_key(created)
        bound_at = await self.version_after_write(target_key, body, created)
        if pending.source_version == version and body == mapped:
            outcome.created += 1
            outcome.bindings.append(Binding(key, target_key, version, bound_at))
            return True
        previous = Binding(key, target_key, pending.source_version, bound_at)
        try:
            await self._settle(outcome, source, mapped, key, version, target_key, previous, None)
        except Exception:
            # The create is done and its target known: bound at the pending version, so
            # the next run sends the change as an update, never the create again.
            outcome.bindings.append(previous)
            raise
        return True

    async def write(self, items: list[tuple[Record, Record]]) -> BatchOutcome:
        """Write a batch of (source record, mapped record) pairs; failures come back."""
        outcome = BatchOutcome()
        # One write per source record, from its last copy in the batch.
        latest = {str(s.get(self.source_key)): (s, m) for s, m in items}
        outcome.unchanged += len(items) - len(latest)
        keys = list(latest)
        # A database read: in a thread, so the event loop (a server's API) never waits on it.
        bound = await asyncio.to_thread(load_bindings, self.store.engine, self.name, keys)
        matches: dict[str, Record] = {}
        for key in keys:
            binding = bound.get(key)
            if binding is not None and binding.pending:
                self._read_pending.add(key)  # read again: not a record that is gone
            if binding is None or binding.pending:
                found = await self._match(latest[key][1])
                if found is not None:
                    matches[key] = found
        taken = await self._taken(matches)
        creates = [
            (key, self.versions.source(*latest[key]), latest[key][1])
            for key in keys
            if key not in bound and key not in matches
        ]
        await asyncio.to_thread(save_pending, self.store.engine, self.name, creates)

        async def guarded(key: str, source: Record, mapped: Record) -> None:
            try:
                match = matches.get(key)
                if match is not None and key in taken:
                    raise ValueError(
                        f"{self.target} record {match.get('id')!r} has the same "
                        f"{', '.join(self.pipeline.match)} as source record {key!r}, but it is "
                        f"already bound to source record {taken[key]!r}: one target record "
                        "stands for one source record; make the match fields unique"
                    )
                await self._one(outcome, source, mapped, bound.get(key), match)
            except Exception as exc:  # recorded against the record; the batch goes on
                outcome.failures.append((source.get(self.source_key), "write", exc))

        await asyncio.gather(*(guarded(k, s, m) for k, (s, m) in latest.items()))
        if outcome.failures and creates:
            # A create whose answer is lost stays pending: its record was read, not gone.
            failed = {str(key) for key, _, _ in outcome.failures}
            self._read_pending.update(key for key, _, _ in creates if key in failed)
        return outcome

    async def _taken(self, matches: dict[str, Record]) -> dict[str, str]:
        """Source key -> the other source key its matched target is bound to already (in
        the store, or earlier in this run); the first of a batch to claim a free target
        gets it."""
        if not matches:
            return {}
        targets = {key: str(found.get("id")) for key, found in matches.items()}
        stored = await asyncio.to_thread(
            bound_sources, self.store.engine, self.name, list(targets.values())
        )
        taken: dict[str, str] = {}
        for key, target in targets.items():
            owner = self._claimed.get(target, stored.get(target))
            if owner is not None and owner != key:
                taken[key] = owner
            else:
                self._claimed[target] = key
        return taken

    # -- the Sink protocol -------------------------------------------------------------------

    def rejects(self, record: Record) -> str | None:
        """Nothing is rejected before the API sees it: the API says what it refuses."""
        return None

    def any_rejected(self, records: Sequence[Record]) -> bool:
        return False

    def reads_from(self, field: str | None, since: Any, upto: Any = None) -> None:
        """Nothing to do: a record read again is unchanged against its binding."""

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """Its batches commit on SQLAlchemy's connection: the bindings and conflicts are
        SQLAlchemy statements."""
        with self.store.transaction() as conn:
            yield conn

    def start(self, conn: sa.Connection, plan: WritePlan, run_id: int) -> None:
        """Nothing to set up: bindings and conflicts live in interlink's own tables."""
        self._plan = plan

    async def send(self, items: list[tuple[Record, Record]]) -> BatchOutcome:
        """The batch's API calls (see `write`); every one answered before this returns."""
        return await self.write(items)

    def commit(self, conn: sa.Connection, sent: BatchOutcome, run_id: int) -> BatchCounts:
        """Save the batch's bindings and parked conflicts in the caller's transaction."""
        save_bindings(conn, self.name, sent.bindings)
        drop_pending(conn, self.name, sent.refused)
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

    def leftovers(self, conn: sa.Connection, *, complete: bool) -> list[str]:
        """After a complete whole read: the pending creates of source records it did not
        find. Their answer never came, so the target may hold a record for each that
        nothing binds; the pending rows are the only trace of them, and they stay."""
        plan = self._plan
        if not complete or plan is None or not plan.full or plan.trial or plan.by_id:
            return []
        gone = [key for key in pending_keys(conn, self.name) if key not in self._read_pending]
        if not gone:
            return []
        shown = ", ".join(repr(key) for key in gone[:5]) + (", ..." if len(gone) > 5 else "")
        return [
            f"{len(gone)} create(s) sent by an earlier run, whose answer never came, belong "
            f"to source records this whole read did not find ({shown}): {self.target} may "
            "hold a record for each that nothing binds; check it there (they stay as "
            "pending bindings in interlink_bindings)"
        ]

    def discard(self, conn: sa.Connection) -> None:
        """Nothing was staged."""
