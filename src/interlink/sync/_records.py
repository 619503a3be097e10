"""Import by id: fetch a pipeline's records fresh from its source and write them as a run
would (`interlink run PIPELINE --id 123`, a webhook's `record:` action).

Each id is fetched with `GET` on the source resource's `item_path` (default
`{path}/{id}`), its record taken from the answer as `RestResource.get` does (JSON:API
flattened; an envelope's `data`, `result` or `item` object), then filtered, mapped and
written through the pipeline's own sink: upserted into a table (appended for `write:
append`), or created or updated at an API destination through its bindings, `match:` and
conflict policy. The run holds the pipeline's lock and has a row in `interlink runs`, so
it never overlaps a whole run, but it is not a read: the cursor and any checkpoint stay as
they were, no staging table is used or swapped, and nothing is deleted by absence (a
record whose `deleted_field` says it is deleted is marked or deleted, as in any run).

An id the source answers 404 for is a failed record (step `fetch`): nothing is written or
deleted for it, since a wrong id or `item_path` would look the same. The source being
unreachable, refusing the credentials (401) or still failing after the client's retries
(429, 5xx) fails the whole run, as a read would fail: a job running it is retried later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from interlink.config import InterlinkConfig, PipelineConfig, RestResourceConfig
from interlink.connectors import Catalog, ChildResource, Record, RestResource, compile_selector
from interlink.errors import (
    ApiError,
    AuthError,
    ConfigError,
    JobCancelledError,
    LeaseLostError,
)
from interlink.store import LOCK_LEASE, Store

from ._accounts import (
    ALL_ACCOUNTS,
    CatalogOpener,
    account_catalog,
    account_table,
    acting_account,
)
from ._batch import filter_and_map, write_batch
from ._commit_thread import to_the_end
from ._filter import compile_filter
from ._lease import LeaseKeeper
from ._mapping import compile_mapping
from ._open_sink import open_sink, pipeline_config
from ._owed import Owed
from ._run_record import Progress, RunResult, recorded_run
from ._sink import BatchCounts, Failure, Sink, WritePlan

__all__ = ["check_records", "fetchable_by_id", "import_ids", "run_records"]

_BATCH = 100
"""Ids fetched, then written and committed together."""
_SHOWN = 10
"""Ids named in the run's note."""
_PLAN = WritePlan(full=False, staged=False, resumed=False, by_id=True)


def fetchable_by_id(
    config: InterlinkConfig, name: str, pipeline: PipelineConfig
) -> RestResourceConfig:
    """The pipeline's source settings, or ConfigError when a record cannot be fetched by
    id from it (GraphQL, SOAP, a child resource without its own `item_path`)."""
    key = f"pipelines.{name}.source"
    try:
        _, _, settings = config.resource(pipeline.source)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0]), key=key) from None
    instead = "run the whole pipeline instead"
    if not isinstance(settings, RestResourceConfig):
        raise ConfigError(
            "records are fetched by id only from a REST resource (GET its item_path), and "
            f"{pipeline.source} is a {settings.type} resource; {instead}",
            key=key,
        )
    if settings.parent and (not settings.item_path or "{parent." in settings.item_path):
        raise ConfigError(
            f"{pipeline.source} is read through its parent "
            f"({settings.parent}), so a record cannot be fetched by its id alone; give the "
            "resource an item_path without {parent.…} (e.g. /orders/{id}) whose answer "
            f"carries {settings.parent_key!r}, or {instead}",
            key=key,
        )
    return settings


def check_records(
    config: InterlinkConfig, pipeline: str, ids: Sequence[str | int] | None = None
) -> None:
    """Raise ConfigError when pipeline `pipeline` cannot import records by id (an unknown
    pipeline, a source that is not a REST resource, a child resource without its own
    `item_path`) or, given `ids`, when one of them cannot be an id (empty, `.`, `..`,
    control characters, not a string or an integer); `run_records` checks the same before
    it takes the lock."""
    fetchable_by_id(config, pipeline, pipeline_config(config, pipeline))
    if ids is not None:
        _wanted(pipeline, ids)


def _wanted(name: str, ids: Sequence[str | int]) -> list[str]:
    """The ids as text, in order, each once; ConfigError for one that cannot be an id."""
    if isinstance(ids, str | bytes):
        raise TypeError(f"ids must be a sequence of ids, not one {type(ids).__name__}")
    wanted: dict[str, None] = {}
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigError(
                f"pipeline {name}: an id is a string or an integer; got {value!r} "
                f"({type(value).__name__})"
            )
        text = str(value).strip()
        if text in ("", ".", "..") or any(ord(c) < 32 for c in text):
            raise ConfigError(f"pipeline {name}: {value!r} cannot be an id")
        wanted[text] = None
    if not wanted:
        raise ConfigError(f"pipeline {name}: no id given")
    return list(wanted)


def _fatal(error: ApiError) -> bool:
    """Whether a failed fetch stops the run: the credentials were refused, or the source
    is away (the client has already retried); anything else concerns that id alone."""
    return isinstance(error, AuthError) or error.retryable


class _Import:
    """One run by id: fetch a batch of ids, filter and map, write, commit; again."""

    def __init__(
        self,
        name: str,
        result: RunResult,
        store: Store,
        item: RestResource,
        settings: RestResourceConfig,
        sink: Sink,
        mapping: Callable[[Record], Record],
        keep: Callable[[Record], bool],
        *,
        lease: float,
        offload: bool,
        dry_run: bool,
        progress: Progress | None,
        should_stop: Callable[[], bool] | None,
        owed: Owed | None = None,
    ) -> None:
        self.name = name
        self.result = result
        self.store = store
        self.owed = owed
        self.item = item
        self.settings = settings
        self.key = settings.primary_key
        self.sink = sink
        self.mapping = mapping
        self.keep = keep
        self.lease = lease
        self.offload = offload
        self.dry_run = dry_run
        self.progress = progress
        self.should_stop = should_stop
        error = settings.error
        self._error = None if error is None else compile_selector(error.path)
        self._error_message = None if error is None else compile_selector(error.message_path)

    def _record(self, id: str, answer: Record) -> Record:
        """The record in a fetched answer; ValueError when the answer is not one."""
        error = self.settings.error
        if self._error is not None and error is not None and self._error(answer) == error.value:
            assert self._error_message is not None
            raise ValueError(f"the API reported an error: {self._error_message(answer) or '?'}")
        record = answer
        if record.get(self.key) is None and isinstance(record.get("data"), dict):
            record = record["data"]  # an envelope `RestResource.get` kept whole
        if record.get(self.key) is None:
            raise ValueError(
                f"the answer for id {id} has no {self.key!r} (the source's primary_key): "
                "is it the record? set the resource's item_path if GET "
                f"{self.settings.path}/{{id}} is not where one record is"
            )
        if self.settings.parent and record.get(self.settings.parent_key) is None:
            raise ValueError(
                f"the answer for id {id} has no {self.settings.parent_key!r}, which a run "
                f"takes from the parent ({self.settings.parent})"
            )
        return record

    async def _fetch(self, ids: list[str]) -> tuple[list[Record], list[Failure]]:
        """The records of `ids` in their order, and the ids that failed (step `fetch`)."""
        gate = asyncio.Semaphore(self.settings.concurrency)
        found: dict[int, Record] = {}
        failed: list[Failure] = []

        async def one(index: int, id: str) -> None:
            try:
                async with gate:
                    answer = await self.item.get(id)
                found[index] = self._record(id, answer)
            except ApiError as exc:
                if _fatal(exc):
                    raise
                failed.append((id, "fetch", exc))
            except Exception as exc:  # this id's answer alone: the others go on
                failed.append((id, "fetch", exc))

        tasks = [asyncio.create_task(one(i, id)) for i, id in enumerate(ids)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [found[i] for i in sorted(found)], failed

    async def go(self, ids: list[str], keeper: LeaseKeeper) -> None:
        result, counts = self.result, self.result.counts
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            records, failed = await self._fetch(chunk)
            counts["pages"] += 1
            counts["read"] += len(records)
            skipped = counts["skipped"]
            items, refused = filter_and_map(
                records,
                keep=self.keep,
                mapping=self.mapping,
                sink=self.sink,
                key=self.key,
                counts=counts,
            )
            failed += refused
            if counts["skipped"] > skipped:
                kept = {str(source.get(self.key)) for source, _ in items}
                kept |= {str(key) for key, _, _ in refused}
                left_out = [
                    str(r.get(self.key)) for r in records if str(r.get(self.key)) not in kept
                ]
                result.warnings.append(
                    f"left out by the pipeline's filter, so not written: {', '.join(left_out)}"
                )
            if self.dry_run:
                for record_key, step, error in failed:
                    result.note_error(record_key, step, error)
                result.would_write += len(items)
            else:
                if keeper.lost:
                    raise LeaseLostError(
                        f"pipeline {self.name}: run {result.run_id} lost its lock to another "
                        "run; it stopped before writing"
                    )
                sent = await self.sink.send(items)
                first = start == 0
                commit = (records, sent, failed, first)
                if self.offload:
                    batch = await to_the_end(asyncio.to_thread(self._commit, *commit))
                else:
                    batch = self._commit(*commit)
                for record_key, step, error in failed + batch.failures:
                    result.note_error(record_key, step, error)
            if self.progress is not None:
                self.progress(result)
            more = start + _BATCH < len(ids)
            if more and not self.dry_run and self.should_stop is not None and self.should_stop():
                raise JobCancelledError(
                    f"stopped after {start + len(chunk)} of {len(ids)} ids; the rest were "
                    "not fetched"
                )

    def _commit(
        self, records: list[Record], sent: Any, failed: list[Failure], first: bool
    ) -> BatchCounts:
        """One batch in one transaction, under the pipeline's lock (runs in a thread)."""
        run_id = self.result.run_id
        assert run_id is not None
        counts = dict(self.result.counts)
        with self.sink.transaction() as conn:
            self.store.hold_lock(conn, self.name, run_id, self.lease)
            if first:
                self.sink.start(conn, _PLAN, run_id)
            batch = write_batch(
                conn,
                self.store,
                self.sink,
                self.name,
                run_id,
                sent,
                failed,
                counts,
                owed=self.owed,
                records=records,
            )
            stored = dict(counts)
            stored["failed"] += len(failed) + len(batch.failures)
            self.store.save_counts(conn, run_id, stored)
        for name in ("created", "updated", "unchanged", "skipped", "deleted"):
            self.result.counts[name] = counts[name]
        return batch


def _shown(ids: Sequence[str]) -> str:
    """The first ids, and how many more."""
    more = f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
    return ", ".join(ids[:_SHOWN]) + more


def _note(ids: list[str]) -> str:
    return (
        f"a run by id ({_shown(ids)}): the cursor and checkpoint were left as they were, and "
        "nothing was deleted by absence"
    )


async def run_records(
    config: InterlinkConfig,
    pipeline: str,
    ids: Sequence[str | int],
    *,
    store: Store,
    catalog: Catalog | None = None,
    catalogs: CatalogOpener | None = None,
    account: str | None = None,
    offload: bool = True,
    should_stop: Callable[[], bool] | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
    lease: float = LOCK_LEASE,
) -> RunResult:
    """Fetch the records `ids` of pipeline `pipeline` fresh from its source and write them
    through its filter, mapping and destination, as a run that read them would.

    The run takes the pipeline's lock (PipelineLockedError while another run holds it) and
    is recorded like any other (`interlink runs`), with a warning naming the ids; its
    status is `succeeded`, or `completed_with_errors` when an id was not found (404, step
    `fetch`) or a record failed to map or write (each recorded, the others go on). The
    cursor, the checkpoint and staging tables are left alone, and nothing is deleted by
    absence; a `write: replace` table gets the records upserted into it. ConfigError for a
    source that cannot be fetched by id (see `check_records`) or an id that cannot be one.

    `account` and `catalogs` are as for `run_pipeline`; a pipeline for every account
    (`*`) needs one named here, since an id belongs to one account's records.

    `offload` runs the database work in a thread (pass True under a worker or a server);
    `should_stop` is asked between batches of 100 ids; `dry_run` fetches, filters and maps,
    and writes nothing.
    """
    name = pipeline
    settings = pipeline_config(config, name)
    fetchable_by_id(config, name, settings)  # refused before anything is opened
    wanted = _wanted(name, ids)
    acting = acting_account(config, name, settings, account)
    if acting == ALL_ACCOUNTS:
        raise ConfigError(
            "account '*' runs for every connected account, and the records of a run by "
            "id belong to one: name it (interlink run --account A)",
            key=f"pipelines.{name}.account",
        )
    result = RunResult(pipeline=name, account=acting, dry_run=dry_run, ids=wanted)
    result.warnings.append(_note(wanted))
    async with account_catalog(
        store, name, settings, acting, catalog=catalog, catalogs=catalogs
    ) as opened:
        await _import(
            config,
            result,
            wanted,
            opened,
            store=store,
            offload=offload,
            should_stop=should_stop,
            progress=progress,
            dry_run=dry_run,
            lease=lease,
        )
    return result


async def _import(
    config: InterlinkConfig,
    result: RunResult,
    wanted: list[str],
    catalog: Catalog,
    *,
    store: Store,
    offload: bool,
    should_stop: Callable[[], bool] | None,
    progress: Progress | None,
    dry_run: bool,
    lease: float,
) -> None:
    name, key = result.pipeline, result.key
    settings = pipeline_config(config, name)
    async with recorded_run(store, result, lease=lease, dry_run=dry_run):
        if settings.write == "replace" and settings.destination.is_sql:
            state = await asyncio.to_thread(store.load_state, key)
            if state.interrupted and state.staged:
                assert settings.destination.sql is not None
                table = account_table(
                    name, settings.destination.sql, result.account, dialect=store.dialect
                )
                result.warnings.append(
                    f"a read of the whole source (run {state.run_id}) is unfinished; when it "
                    f"completes, its staging table replaces table {table}, with the values "
                    "it read, which may be older than the ones this run wrote"
                )
        owed = None
        if not dry_run:
            source_key = fetchable_by_id(config, name, settings).primary_key
            owed = await asyncio.to_thread(Owed.load, store, key, source_key)
            owed.owes_not_found = False  # ids someone named: one the source lacks is not owed
        assert result.run_id is not None
        async with LeaseKeeper(store, key, result.run_id, lease=lease) as keeper:
            await import_ids(
                config,
                result,
                wanted,
                catalog,
                store=store,
                keeper=keeper,
                owed=owed,
                offload=offload,
                should_stop=should_stop,
                progress=progress,
                dry_run=dry_run,
                lease=lease,
            )
        if owed is not None:
            result.warnings.extend(owed.note())


async def import_ids(
    config: InterlinkConfig,
    result: RunResult,
    wanted: list[str],
    catalog: Catalog,
    *,
    store: Store,
    keeper: LeaseKeeper,
    owed: Owed | None,
    offload: bool,
    should_stop: Callable[[], bool] | None,
    progress: Progress | None,
    dry_run: bool,
    lease: float,
) -> None:
    """Fetch the records `wanted` of pipeline `result.pipeline` by id and write them, in
    run `result.run_id` (whose lock `keeper` renews), through a sink of their own; with
    `owed`, what they settle or fail is booked there. ConfigError for a source that
    cannot be fetched by id."""
    name, key = result.pipeline, result.key
    settings = pipeline_config(config, name)
    source_settings = fetchable_by_id(config, name, settings)
    where = f"pipelines.{name}"
    mapping = compile_mapping(settings.fields, where=f"{where}.fields")
    keep = compile_filter(settings.filter, where=f"{where}.filter")
    source = catalog.resource(settings.source)
    item = source.child if isinstance(source, ChildResource) else source
    assert isinstance(item, RestResource)
    sink = open_sink(store, name, settings, catalog, source, mapping, account=result.account)
    run = _Import(
        key,
        result,
        store,
        item,
        source_settings,
        sink,
        mapping,
        keep,
        lease=lease,
        offload=offload,
        dry_run=dry_run,
        progress=progress,
        should_stop=should_stop,
        owed=owed,
    )
    await run.go(wanted, keeper)
