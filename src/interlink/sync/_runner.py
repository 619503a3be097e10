"""Run a pipeline: read pages, filter and map records, write them, checkpoint as you go.

One page is one batch. A batch's rows, its failed records, the read's checkpoint and
cursor, and the run's counters commit in ONE transaction, fenced by the pipeline's lock,
so a run killed at any instant resumes after the last committed page: nothing is lost,
and nothing is written twice (the page after the checkpoint is the first one read again).
Database work runs in a thread, off the event loop, so a server's API and heartbeats
sharing the loop never wait on it.

The run succeeds only when the destination holds what the source has: a read that stops
short of the total the API announced fails (or, with `on_total_mismatch: warn`, succeeds
with a warning but moves no cursor, deletes nothing and swaps in no staging table).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from interlink.config import InterlinkConfig, PipelineConfig
from interlink.connectors import Catalog, Page, Record, Resource, higher_cursor
from interlink.errors import (
    ConfigError,
    IncompleteReadError,
    IncrementalError,
    JobCancelledError,
    LeaseLostError,
    SyncError,
)
from interlink.store import LOCK_LEASE, PipelineState, Store

from ._accounts import ALL_ACCOUNTS, CatalogOpener, account_catalog, acting_account
from ._batch import filter_and_map, write_batch
from ._commit_thread import to_the_end
from ._filter import compile_filter, take_all
from ._fingerprint import source_fingerprint
from ._lease import LeaseKeeper
from ._mapping import compile_mapping
from ._open_sink import open_sink, pipeline_config
from ._owed import Owed
from ._owed_retry import pay_owed
from ._plan import ReadPlan, filter_fingerprint, plan_read
from ._run_record import Progress, RunResult, recorded_run
from ._sink import BatchCounts, Failure, Sink

__all__ = ["run_into", "run_pipeline"]

REREAD_TO = "reread_to"
"""A resumed read's checkpoint key: the highest value the read before it saw."""


async def run_pipeline(
    config: InterlinkConfig,
    name: str,
    *,
    store: Store,
    catalog: Catalog | None = None,
    catalogs: CatalogOpener | None = None,
    account: str | None = None,
    full_refresh: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    lease: float = LOCK_LEASE,
    offload: bool = True,
) -> RunResult:
    """Run pipeline `name` once and return what happened.

    `account` is the connected account of the source's oauth2 connection the run acts for
    (None: the pipeline's `account:`, else the default account); its state, lock, run row
    and bindings are its own. A run for an account opens its catalog through `catalogs`
    (`lambda accounts: open_catalog(config, store, accounts=accounts)`); `catalog`, a
    catalog opened already, serves only the default account. A pipeline for every
    account (`*`) runs through `run_each_account`.

    `full_refresh` reads the whole source (an interrupted full read is continued, not
    restarted); `dry_run` reads, filters and maps without writing or moving the state;
    `limit` makes a trial: it stops after that many records, writes them (into a scratch
    table where a run would replace the table), and moves no cursor. `should_stop` is
    asked after every committed batch; when it says yes the run ends there (status
    `cancelled`, the checkpoint kept) and `JobCancelledError` is raised. `lease` is how
    long the pipeline's lock lasts between heartbeats. `offload` commits each batch in a
    thread, so the event loop (a server's API, a worker's heartbeats) never waits on the
    database; a process that runs nothing else on its loop (`interlink run`) passes False
    and saves the threads' contention for the GIL (about 7% of a 100,000-record run).
    """
    pipeline = pipeline_config(config, name)
    acting = acting_account(config, name, pipeline, account)
    if acting == ALL_ACCOUNTS:
        raise ConfigError(
            "account '*' runs the pipeline once for every connected account: run it with "
            "interlink run, a job, or sync.run_each_account",
            key=f"pipelines.{name}.account",
        )
    result = RunResult(
        pipeline=name, account=acting, dry_run=dry_run, trial=limit is not None and not dry_run
    )
    await run_into(
        config,
        result,
        store=store,
        catalog=catalog,
        catalogs=catalogs,
        full_refresh=full_refresh,
        dry_run=dry_run,
        limit=limit,
        progress=progress,
        should_stop=should_stop,
        lease=lease,
        offload=offload,
    )
    return result


async def run_into(
    config: InterlinkConfig,
    result: RunResult,
    *,
    store: Store,
    catalog: Catalog | None,
    catalogs: CatalogOpener | None,
    full_refresh: bool,
    dry_run: bool,
    limit: int | None,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    lease: float,
    offload: bool,
) -> None:
    """Run pipeline `result.pipeline` once for `result.account` (checked already, never
    `*`), filling `result` as it goes: a caller that catches the error still has the run's
    id and counts (`run_each_account`)."""
    name = result.pipeline
    pipeline = pipeline_config(config, name)
    where = f"pipelines.{name}"
    mapping = compile_mapping(pipeline.fields, where=f"{where}.fields")
    keep = compile_filter(pipeline.filter, where=f"{where}.filter")
    _, _, source_config = config.resource(pipeline.source)
    if pipeline.write == "append" and getattr(source_config, "parent", None):
        # A child read resumes at the start of a parent page, re-reading children already
        # written: harmless when rows are upserted by key, doubled rows in an append table.
        raise ConfigError(
            f"{where}.write: a child resource ({pipeline.source}) cannot be appended: a "
            "resumed read would write some children twice; use write: merge",
            key=f"{where}.write",
        )
    key = result.key
    async with account_catalog(
        store, name, pipeline, result.account, catalog=catalog, catalogs=catalogs
    ) as opened:
        source = opened.resource(pipeline.source)
        sink = open_sink(store, name, pipeline, opened, source, mapping, account=result.account)
        fingerprint = filter_fingerprint(
            source_fingerprint(config, pipeline.source, incremental=pipeline.incremental),
            pipeline.filter,
            pipeline.fields,
        )
        trial = result.trial
        async with recorded_run(
            store, result, lease=lease, full_refresh=full_refresh, dry_run=dry_run, trial=trial
        ):
            run = _Run(
                key,
                pipeline,
                result,
                store,
                source,
                sink,
                mapping,
                keep,
                fingerprint=fingerprint,
                incremental_field=(
                    source_config.incremental.field if source_config.incremental else None
                ),
                lease=lease,
                offload=offload,
                progress=progress,
                should_stop=should_stop,
            )
            state = await asyncio.to_thread(store.load_state, key)
            plan = plan_read(
                key,
                pipeline,
                state,
                fingerprint=fingerprint,
                incremental=source_config.incremental is not None,
                full_refresh=full_refresh,
                trial=trial,
            )
            if not dry_run and not trial:
                run.owed = await asyncio.to_thread(Owed.load, store, key, source.primary_key)
            assert result.run_id is not None
            async with LeaseKeeper(store, key, result.run_id, lease=lease) as keeper:
                await run.go(plan, state, keeper, dry_run=dry_run, limit=limit)
                if run.owed is not None:
                    run.carried_over(plan)
                    run.owed.defer = False  # what follows writes to the table itself
                    await pay_owed(
                        config,
                        result,
                        run.owed,
                        opened,
                        store=store,
                        keeper=keeper,
                        # A resumed read met in this run only what followed its checkpoint.
                        whole_read=plan.write.full and not plan.write.resumed and run.read_complete,
                        lease=lease,
                        offload=offload,
                        should_stop=should_stop,
                        progress=progress,
                    )


class _Run:
    """One run's loop: pages in, batches committed (see the module docstring)."""

    def __init__(
        self,
        name: str,
        pipeline: PipelineConfig,
        result: RunResult,
        store: Store,
        source: Resource,
        sink: Sink,
        mapping: Callable[[Record], Record],
        keep: Callable[[Record], bool],
        *,
        fingerprint: str,
        incremental_field: str | None,
        lease: float,
        offload: bool,
        progress: Progress | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.name = name
        self.pipeline = pipeline
        self.result = result
        self.store = store
        self.source = source
        self.sink = sink
        self.mapping = mapping
        self.keep = keep
        self.fingerprint = fingerprint
        self.incremental_field = incremental_field
        self.lease = lease
        self.offload = offload
        self.progress = progress
        self.should_stop = should_stop
        # Records copied as they are need no per-record step at all: the page's own dicts
        # are written (nothing downstream changes them), and only a batch with a record
        # the sink would reject goes through the loop to set that record aside.
        self.verbatim = sink.verbatim and getattr(mapping, "copies_all", False) and keep is take_all
        self.owed: Owed | None = None
        """What the pipeline owes its destination; None for a dry run or a trial."""
        self.read_complete = False
        """The read ended with everything the source announced."""
        self.carried: list[str] = []
        """Keys owed by the interrupted run this one resumes, counted failed in this one."""
        self.reread_to: Any = None
        """The highest value the read before this one saw (records from the cursor to it
        may come again)."""

    def _items(self, records: list[Record]) -> tuple[list[tuple[Record, Record]], list[Failure]]:
        """Filter and map one page; failed records are set aside with their step."""
        if self.verbatim and not self.sink.any_rejected(records):
            return list(zip(records, records, strict=True)), []
        return filter_and_map(
            records,
            keep=self.keep,
            mapping=self.mapping,
            sink=self.sink,
            key=self.source.primary_key,
            counts=self.result.counts,
        )

    async def go(
        self,
        plan: ReadPlan,
        state: PipelineState,
        keeper: LeaseKeeper,
        *,
        dry_run: bool,
        limit: int | None,
    ) -> None:
        result = self.result
        result.resumed = plan.write.resumed
        result.wrote_to = self.sink.target
        if plan.write.trial and plan.write.staged:
            result.wrote_to = f"a scratch table (dropped; {self.sink.target} unchanged)"
        if plan.note:
            result.warnings.append(plan.note)
        if self.owed is not None:
            self.owed.defer = plan.write.staged
        counts = result.counts
        if plan.write.resumed and state.run_id is not None:
            # Records that failed earlier in this read still count: they block deletions
            # by absence and a swap, and the read as a whole did not go through.
            earlier = await asyncio.to_thread(self.store.run, state.run_id)
            carried = int(earlier["failed"]) if earlier else 0
            if carried and self.owed is not None:
                # The keyed ones are also owed: see `carried_over`.
                before = self.owed.before
                self.carried = [key for key, run in before.items() if run == state.run_id]
            if carried:
                counts["failed"] += carried
                result.warnings.append(
                    f"{carried} records failed earlier in this read (run {state.run_id}); "
                    "see `interlink runs` and interlink_record_errors"
                )
        # A resumed read starts again from its checkpoint: the highest cursor the pages
        # before it had seen comes from the state, never lower than where it began.
        # The read starts at the cursor: the last read's final records come again, and
        # those it read past its signpost. A resumed read's checkpoint keeps that window.
        # What the last complete read saw stays known through this read (its checkpoint
        # carries it), whether or not this read looks into it.
        if plan.write.resumed:
            checkpoint = state.checkpoint or {}
            self.reread_to = checkpoint.get(REREAD_TO)
        else:
            self.reread_to = state.read_to
        # Only a read of changes meets again what the last one wrote: not a whole read of
        # a pipeline that is not incremental, nor one into a staging table. With no cursor
        # stored (the last read held every value back), the read is whole and looks into
        # everything up to what the last one saw.
        changes = self.pipeline.incremental and self.pipeline.write != "replace"
        looks = changes and not plan.write.staged
        from_cursor = plan.since is not None or state.cursor is None
        window = self.reread_to if looks and from_cursor else None
        self.sink.reads_from(self.incremental_field, plan.since, window)
        seen_before = state.pending_cursor if plan.write.resumed else None
        cursor = higher_cursor(plan.since, seen_before)
        try:
            await self._read(plan, state, keeper, cursor, seen_before, dry_run, limit)
        except IncompleteReadError:
            if not dry_run and not plan.write.trial:
                # Resuming this read would only end short again: the next run starts anew.
                await asyncio.to_thread(self._abandon)
            raise

    def _checkpoint(self, page: Page) -> dict[str, Any]:
        """The checkpoint stored after `page`: the connector's, and the window of records
        the read before may have written (`reads_from`), for a resumed read."""
        checkpoint = page.checkpoint if page.checkpoint is not None else {}
        if self.reread_to is not None:
            checkpoint = {**checkpoint, REREAD_TO: self.reread_to}
        return checkpoint

    def _read_to(self, seen_to: Any, cursor: Any, moved: bool) -> Any:
        """The highest value this read saw, for the next read's window (`reads_from`);
        with the window of the read before when this one moved no cursor (the next read
        starts where that one did). Values that do not compare (the field changed kind)
        leave the window to this read's own."""
        mine = seen_to if seen_to is not None else cursor
        if moved or self.reread_to is None:
            return mine
        try:
            return higher_cursor(self.reread_to, mine)
        except IncrementalError:
            return mine

    def carried_over(self, plan: ReadPlan) -> None:
        """After the read: records that failed before the interruption are counted failed
        in this run (they held back its deletions), and are owed. Where they held back
        deletions, they stay so (and are not fetched again in this run); otherwise they
        count only as their fetch by id ends (`pay_owed`)."""
        if not self.carried or self.owed is None:
            return
        if plan.write.full and self.pipeline.deletes:
            self.owed.met.update(self.carried)
            return
        counts = self.result.counts
        counts["failed"] = max(counts["failed"] - len(self.carried), 0)

    def _abandon(self) -> None:
        run_id = self.result.run_id
        assert run_id is not None
        with self.sink.transaction() as conn:
            self.store.hold_lock(conn, self.name, run_id, self.lease)
            # The window of the last complete read stays: the next read starts at its cursor.
            self.store.abandon_read(conn, self.name, read_to=self.reread_to)
            self.sink.discard(conn)

    async def _read(
        self,
        plan: ReadPlan,
        state: PipelineState,
        keeper: LeaseKeeper,
        cursor: Any,
        seen_before: Any,
        dry_run: bool,
        limit: int | None,
    ) -> None:
        result, counts = self.result, self.result.counts
        first = True
        resume = plan.resume
        if resume:
            resume = {k: v for k, v in resume.items() if k != REREAD_TO}
        async for page in self.source.pages(since=plan.since, resume=resume, limit=limit):
            if keeper.lost:
                raise LeaseLostError(
                    f"pipeline {self.name}: run {result.run_id} lost its lock to another run; "
                    "it stopped before writing page "
                    f"{counts['pages'] + 1}"
                )
            counts["pages"] += 1
            counts["read"] += len(page.records)
            self.read_complete = page.done and page.complete
            result.warnings.extend(page.warnings)
            items, failed = self._items(page.records)
            if page.cursor is not None:
                cursor = higher_cursor(page.cursor, seen_before)
            if dry_run:
                for record_key, step, error in failed:
                    result.note_error(record_key, step, error)
                result.would_write += len(items)
            else:
                sent = await self.sink.send(items)
                commit = (plan, state, page, sent, failed, cursor, first)
                if self.offload:
                    batch = await to_the_end(asyncio.to_thread(self._commit, *commit))
                else:
                    batch = self._commit(*commit)
                first = False
                for record_key, step, error in failed + batch.failures:
                    result.note_error(record_key, step, error)
                if page.done and plan.write.staged and not plan.write.trial:
                    if not page.complete:
                        raise SyncError(
                            "the read was incomplete ("
                            + ("; ".join(page.warnings) or "fewer records than announced")
                            + "), and a staging table is never swapped in for an "
                            f"incomplete read: {self.sink.target} was left as it was",
                            pipeline=self.name,
                        )
                    if counts["failed"]:
                        raise SyncError(
                            f"{counts['failed']} records failed, and a staging table missing "
                            f"them is never swapped in: {self.sink.target} was left as it "
                            "was; fix them (see the failed records) and run again",
                            pipeline=self.name,
                        )
            result.cursor = cursor
            if self.progress is not None:
                self.progress(result)
            if (
                self.should_stop is not None
                and not page.done
                and not dry_run
                and self.should_stop()
            ):
                raise JobCancelledError(f"stopped after page {counts['pages']}; it resumes there")

    def _commit(
        self,
        plan: ReadPlan,
        state: PipelineState,
        page: Page,
        sent: Any,
        failed: list[Failure],
        cursor: Any,
        first: bool,
    ) -> BatchCounts:
        """One batch in one transaction, under the pipeline's lock (runs in a thread)."""
        store, name = self.store, self.name
        # Counted on a copy, applied once the transaction committed: a batch rolled back
        # leaves the run's counters as they were.
        counts = dict(self.result.counts)
        warnings: list[str] = []
        run_id = self.result.run_id
        assert run_id is not None
        write = plan.write
        with self.sink.transaction() as conn:
            store.hold_lock(conn, name, run_id, self.lease)
            if first:
                self.sink.start(conn, write, run_id)
            batch = write_batch(
                conn,
                store,
                self.sink,
                name,
                run_id,
                sent,
                failed,
                counts,
                owed=self.owed,
                records=page.records,
            )
            if page.done:
                complete = page.complete and not write.trial
                failed_so_far = counts["failed"] + len(failed) + len(batch.failures)
                counts["deleted"] += self.sink.finish(
                    conn, complete=complete, failed=failed_so_far, run_id=run_id
                )
                # A staging table missing a failed record's row is never swapped in.
                swapped = write.staged and complete and not failed_so_far
                if self.owed is not None and write.staged:
                    self.owed.settle_deferred(conn, swapped=swapped)
                warnings.extend(self.sink.leftovers(conn, complete=complete))
                if failed_so_far and write.full and not write.staged and self.pipeline.deletes:
                    warnings.append(
                        f"{failed_so_far} records failed, so rows this read did not see "
                        "were not deleted (a failed record's row must not go)"
                    )
                if write.trial:
                    self.sink.discard(conn)
            # Failed records are counted by the caller after the commit; the counters
            # stored here already include them so a resumed run starts from the truth.
            stored = dict(counts)
            stored["failed"] += len(failed) + len(batch.failures)
            if write.trial:
                store.save_counts(conn, run_id, stored)
            elif page.done:
                # An incomplete read never moves the cursor: the next run reads again
                # from where the last complete read ended.
                # Nor does a staged read whose table was not swapped in: the table holds
                # what the read before it loaded, and the next read starts where that ended.
                moved = page.complete and (swapped or not write.staged)
                store.complete_read(
                    conn,
                    name,
                    run_id,
                    cursor if moved else state.cursor,
                    fingerprint=self.fingerprint,
                    read_to=self._read_to(page.seen_to, cursor, moved),
                )
                store.save_counts(conn, run_id, stored)
            else:
                store.save_progress(
                    conn,
                    name,
                    run_id,
                    read_since=plan.since,
                    checkpoint=self._checkpoint(page),
                    pending_cursor=cursor,
                    counts=stored,
                    fingerprint=self.fingerprint,
                    full_read=write.full,
                    staged=write.staged,
                )
        for name_ in ("created", "updated", "unchanged", "skipped", "deleted"):
            self.result.counts[name_] = counts[name_]
        self.result.warnings.extend(warnings)
        return batch
