"""Run a pipeline: read pages, filter and map records, write them, checkpoint as you go.

One page is one batch. For a table destination, a batch's rows, its failed records, the
read's checkpoint and cursor, and the run's counters commit in ONE transaction, so a run
killed at any instant resumes after the last committed page: nothing is lost, and nothing
is written twice (the page after the checkpoint is the first one read again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from interlink.config import InterlinkConfig, PipelineConfig
from interlink.connectors import Catalog, Record, Resource
from interlink.errors import ConfigError, InterlinkError, JobCancelledError
from interlink.store import COUNTERS, Store

from ._api_sink import ApiSink
from ._filter import compile_filter, take_all
from ._mapping import compile_mapping
from ._sql_sink import SqlSink

__all__ = ["Progress", "RunResult", "run_pipeline"]

Progress = Callable[["RunResult"], None]
"""Called after every batch with the run so far (the CLI draws its progress bar from it)."""

_ERRORS_KEPT = 20


@dataclass
class RunResult:
    """What a run did: its counters, its first errors, and how it ended."""

    pipeline: str
    run_id: int | None = None
    status: str = "running"
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    errors: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    elapsed: float = 0.0
    resumed: bool = False
    dry_run: bool = False
    cursor: Any = None
    message: str | None = None
    would_write: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def note_error(self, key: Any, step: str, error: BaseException | str) -> None:
        self.counts["failed"] += 1
        if len(self.errors) < _ERRORS_KEPT:
            text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            self.errors.append(
                {"key": None if key is None else str(key), "step": step, "error": text}
            )


def _key(record: Record, source: Resource) -> Any:
    return record.get(source.primary_key)


async def run_pipeline(
    config: InterlinkConfig,
    name: str,
    *,
    store: Store,
    catalog: Catalog,
    full_refresh: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Run pipeline `name` once and return what happened.

    `full_refresh` ignores the stored cursor and any interrupted read; `dry_run` reads,
    filters and maps without writing or moving the state; `limit` stops after that many
    records and leaves the state as it was (a trial run). `should_stop` is asked after
    every committed batch; when it says yes the run ends there (status `cancelled`, the
    checkpoint kept) and `JobCancelledError` is raised.
    """
    try:
        pipeline = config.pipelines[name]
    except KeyError:
        known = ", ".join(config.pipelines) or "none defined"
        raise ConfigError(f"unknown pipeline {name!r}; known: {known}", key="pipelines") from None
    where = f"pipelines.{name}"
    mapping = compile_mapping(pipeline.fields, where=f"{where}.fields")
    keep = compile_filter(pipeline.filter, where=f"{where}.filter")
    source = catalog.resource(pipeline.source)
    sink: SqlSink | ApiSink
    if pipeline.destination.is_sql:
        table = pipeline.destination.sql
        assert table is not None
        key = pipeline.destination.primary_key or source.primary_key
        sink = SqlSink(
            store,
            table,
            primary_key=[key] if isinstance(key, str) else list(key),
            mode=pipeline.write,
        )
    else:
        assert pipeline.destination.resource is not None
        sink = ApiSink(
            store,
            name,
            pipeline,
            catalog.writable(pipeline.destination.resource),
            source_key=source.primary_key,
            fields=mapping.fields,
        )

    result = RunResult(pipeline=name, dry_run=dry_run)
    result.run_id = store.begin_run(name, full_refresh=full_refresh, dry_run=dry_run)
    try:
        await _run(
            pipeline,
            name,
            result,
            store,
            source,
            sink,
            mapping,
            keep,
            full_refresh=full_refresh,
            dry_run=dry_run,
            limit=limit,
            progress=progress,
            should_stop=should_stop,
        )
    except JobCancelledError as exc:
        result.status = "cancelled"
        result.message = str(exc)
        raise
    except BaseException as exc:
        result.status = "failed"
        result.message = (
            str(exc) if isinstance(exc, InterlinkError) else f"{type(exc).__name__}: {exc}"
        )
        raise
    else:
        result.status = "succeeded" if not result.counts["failed"] else "completed_with_errors"
    finally:
        result.elapsed = time.perf_counter() - result.started
        store.finish_run(
            name,
            result.run_id,
            status=result.status if result.status != "running" else "failed",
            counts=result.counts,
            errors=result.errors,
            message=result.message,
            resumed=result.resumed,
        )
    return result


async def _run(
    pipeline: PipelineConfig,
    name: str,
    result: RunResult,
    store: Store,
    source: Resource,
    sink: SqlSink | ApiSink,
    mapping: Callable[[Record], Record],
    keep: Callable[[Record], bool],
    *,
    full_refresh: bool,
    dry_run: bool,
    limit: int | None,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    assert result.run_id is not None
    run_id = result.run_id
    state = store.load_state(name)
    since: Any = None
    resume: dict[str, Any] | None = None
    if not full_refresh:
        if state.interrupted:
            since, resume = state.read_since, state.checkpoint
            result.resumed = True
        elif pipeline.incremental:
            since = state.cursor
    trial = dry_run or limit is not None
    first_batch = not result.resumed
    counts = result.counts
    cursor = since

    # Records copied as they are into a table need no per-record step at all: the page's
    # own dicts are written (nothing downstream changes them), and only a batch with a
    # record lacking its key goes through the loop below to set that record aside.
    verbatim = (
        isinstance(sink, SqlSink) and getattr(mapping, "copies_all", False) and keep is take_all
    )

    async for page in source.pages(since=since, resume=resume, limit=limit):
        counts["pages"] += 1
        counts["read"] += len(page.records)
        items: list[tuple[Record, Record]] = []
        failed: list[tuple[Any, str, BaseException]] = []
        records = page.records
        if verbatim and isinstance(sink, SqlSink) and not sink.any_keyless(records):
            items = list(zip(records, records, strict=True))
            records = []
        for record in records:
            try:
                if not keep(record):
                    counts["skipped"] += 1
                    continue
            except Exception as exc:  # a filter callable that broke: the record fails alone
                failed.append((_key(record, source), "filter", exc))
                continue
            try:
                mapped = mapping(record)
            except Exception as exc:
                failed.append((_key(record, source), "map", exc))
                continue
            if isinstance(sink, SqlSink) and sink.keyless(mapped):
                missing = KeyError(
                    f"no value for the key {', '.join(sink.primary_key)} after mapping"
                )
                failed.append((_key(record, source), "write", missing))
                continue
            items.append((record, mapped))
        if page.cursor is not None:
            cursor = page.cursor
        outcome = None
        if not dry_run and isinstance(sink, ApiSink):
            # Every write of the page is acknowledged before its checkpoint is committed.
            outcome = await sink.write(items)
            failed.extend(outcome.failures)
        for record_key, step, error in failed:
            result.note_error(record_key, step, error)
        if dry_run:
            result.would_write += len(items)
        else:
            with store.transaction() as conn:
                if isinstance(sink, SqlSink):
                    if first_batch and pipeline.write == "replace":
                        sink.truncate(conn)
                    written = sink.write(conn, [mapped for _, mapped in items], run_id=run_id)
                    counts["created"] += written.created
                    counts["updated"] += written.updated
                    counts["unchanged"] += written.unchanged
                elif outcome is not None:
                    sink.commit(conn, outcome, run_id)
                    counts["created"] += outcome.created
                    counts["updated"] += outcome.updated
                    counts["unchanged"] += outcome.unchanged
                    counts["skipped"] += outcome.skipped
                first_batch = False
                for record_key, step, error in failed:
                    store.record_error(
                        conn,
                        run_id,
                        name,
                        key=None if record_key is None else str(record_key),
                        step=step,
                        error=f"{type(error).__name__}: {error}",
                    )
                if not trial:
                    store.save_progress(
                        conn,
                        name,
                        run_id,
                        read_since=since,
                        checkpoint=page.checkpoint,
                        pending_cursor=cursor,
                        counts=counts,
                    )
                    if page.done:
                        store.complete_read(conn, name, run_id, cursor)
        result.cursor = cursor
        if progress is not None:
            progress(result)
        if should_stop is not None and should_stop() and not page.done:
            raise JobCancelledError(f"stopped after page {counts['pages']}; it resumes there")
