"""`/jobs`: submit a pipeline run (202 + status_url), list, look at and cancel jobs."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import ValidationError

from interlink.config import PipelineConfig
from interlink.errors import ConfigError, ConnectionDisabledError
from interlink.jobs import PIPELINE_KIND, Job, JobFilter, JobSpec, pipeline_job
from interlink.store import disabled
from interlink.sync import ALL_ACCOUNTS, acting_account, require_connected, source_connection

from ._context import Context, api_key_of, known_query_only
from ._envelope import API_PREFIX, success
from ._errors import ApiProblem, conflict, invalid_field, not_found
from ._models import (
    CONFIG_KEYS,
    JOB_TYPES,
    MAX_ID,
    NAME_PATTERN,
    Envelope,
    ErrorEnvelope,
    JobCreate,
    JobCreated,
    JobOut,
    JobStatusName,
    Page,
)

__all__ = ["check_account", "clamp_limit", "router"]

router = APIRouter(tags=["jobs"], dependencies=[Depends(known_query_only)])

JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="A job's id.")]
_KIND_PATTERN = r"^[A-Za-z0-9_.:-]+$"
# Printable ASCII without spaces: what Stripe and the IETF draft accept as a key.
_IDEMPOTENCY_PATTERN = r"^[!-~]+$"


def clamp_limit(limit: int) -> int:
    return max(1, min(100, limit))


def status_url(job_id: int) -> str:
    return f"{API_PREFIX}/jobs/{job_id}"


# An error names this many unknown keys, each cut to _MAX_NAME characters: a body of
# 30,000 made-up keys is refused in a few hundred bytes, not echoed back five times over.
_MAX_NAMED = 10
_MAX_NAME = 60


def _shown(name: str) -> str:
    return name if len(name) <= _MAX_NAME else name[: _MAX_NAME - 3] + "..."


def _flat(body: JobCreate) -> JobCreate:
    """The guide's `{"config": {...}, "type": ...}` as the flat body it stands for.

    400 INVALID_REQUEST (the guide's answer) for a body with neither `config` nor
    `pipeline` that is not a noop, a `config` without `pipeline` (a noop's too: the
    schema's JobConfig requires it), and for keys `config` cannot hold; 422 for a `config`
    mixed with flat fields, a `type` that contradicts `kind`, or a bad value in `config`.
    """
    sent = body.model_fields_set
    kind: str = body.kind
    if body.type is not None:
        kind = JOB_TYPES[body.type]
        if "kind" in sent and body.kind != kind:
            raise invalid_field("type", f"type {body.type!r} contradicts kind {body.kind!r}")
    if body.config is None:
        if body.pipeline is None and kind == PIPELINE_KIND:
            raise ApiProblem(
                400,
                "Missing required field: config (or pipeline).",
                details=[{"field": "config", "issue": 'required, e.g. {"pipeline": "customers"}'}],
            )
        return body.model_copy(update={"kind": kind})
    unknown = sorted(set(body.config) - set(CONFIG_KEYS))
    if unknown:
        named = [_shown(name) for name in unknown[:_MAX_NAMED]]
        more = f" and {len(unknown) - len(named)} more" if len(unknown) > len(named) else ""
        raise ApiProblem(
            400,
            f"Unknown config keys: {', '.join(named)}{more} "
            f"(config takes {', '.join(CONFIG_KEYS)}).",
            details=[{"field": f"config.{name}", "issue": "unknown key"} for name in named],
        )
    mixed = sorted(sent & set(CONFIG_KEYS))
    if mixed:
        raise ApiProblem(
            422,
            "Send a run's fields either in config or flat, not both.",
            code="VALIDATION_ERROR",
            details=[{"field": name, "issue": "also given in config"} for name in mixed],
        )
    fields: dict[str, Any] = {**body.config, "kind": kind, "priority": body.priority}
    try:
        flat = JobCreate.model_validate(fields)
    except ValidationError as exc:
        details = [
            {"field": ".".join(["config", *map(str, error["loc"])]), "issue": error["msg"]}
            for error in exc.errors()
        ]
        raise ApiProblem(422, "The request has invalid fields.", details=details) from None
    if flat.pipeline is None:
        # A noop needs no config at all; one sent names a pipeline, as the schema says.
        raise ApiProblem(
            400,
            "Missing required field: config.pipeline.",
            details=[
                {
                    "field": "config.pipeline",
                    "issue": "required: config holds a pipeline run's fields",
                }
            ],
        )
    return flat


def _spec(ctx: Context, body: JobCreate) -> JobSpec:
    body = _flat(body)
    if body.pipeline is not None and body.pipeline not in ctx.config.pipelines:
        known = ", ".join(sorted(ctx.config.pipelines)) or "none defined"
        raise invalid_field("pipeline", f"no pipeline named {body.pipeline!r}; known: {known}")
    if body.kind != PIPELINE_KIND:
        return JobSpec(body.kind, {}, priority=body.priority)
    if body.pipeline is None:  # _flat refused it already; kept for the type checker
        raise invalid_field("pipeline", "required for kind pipeline.run")
    check_account(ctx, body.pipeline, ctx.config.pipelines[body.pipeline], body.account)
    return pipeline_job(
        body.pipeline,
        account=body.account,
        full_refresh=body.full_refresh,
        dry_run=body.dry_run,
        limit=body.limit,
        priority=body.priority,
    )


def _account_conflict(exc: ConfigError) -> ApiProblem:
    return ApiProblem(409, exc.message, details=[{"field": "account", "issue": exc.message}])


def check_account(ctx: Context, name: str, pipeline: PipelineConfig, account: str | None) -> None:
    """Refuse a run that cannot go, with 409: CONFLICT for an account the pipeline cannot
    act for (its source has no connected accounts, `*` for a table without `{account}`)
    or that is not connected, CONNECTION_DISABLED for a connection or account switched
    off. (A name that cannot be an account is the body's 422.)"""
    try:
        acting = acting_account(ctx.config, name, pipeline, account)
    except ConfigError as exc:
        raise _account_conflict(exc) from None
    source = source_connection(pipeline)
    one = acting if acting != ALL_ACCOUNTS else ""
    used = [(source, one)]
    if pipeline.destination.resource is not None:
        used.append((pipeline.destination.resource.partition(".")[0], ""))
    for connection, of in used:
        switch = disabled(ctx.store.engine, connection, of)
        if switch is not None:
            error = ConnectionDisabledError(connection, switch.account, reason=switch.reason)
            field, issue = "pipeline", f"connection {connection!r} is switched off"
            if switch.account:
                field, issue = "account", f"account {switch.account!r} is switched off"
            raise ApiProblem(
                409, str(error), code=error.code, details=[{"field": field, "issue": issue}]
            )
    if one:
        try:
            require_connected(ctx.store, name, source, one)
        except ConfigError as exc:
            raise _account_conflict(exc) from None


def _same_request(job: Job, spec: JobSpec) -> bool:
    return (job.kind, job.args, job.priority) == (spec.kind, spec.args, spec.priority)


@router.post(
    "/jobs",
    status_code=202,
    response_model=Envelope[JobCreated],
    responses={
        409: {
            "model": ErrorEnvelope,
            "description": "CONFLICT: Idempotency-Key reused, or an account the pipeline "
            "cannot act for or that is not connected; CONNECTION_DISABLED: the pipeline's "
            "connection or account is switched off",
        }
    },
    summary="Submit a job",
    description=(
        "Queues a pipeline run (or a `noop`) and answers 202 at once; poll `status_url`. "
        'The body is the console guide\'s `{"config": {"pipeline": "customers"}, '
        '"type": "pipeline"}` or the same fields flat (`pipeline`, `kind`, ...). '
        "The same `Idempotency-Key` (per API key) returns the job it made the first time."
    ),
)
def create_job(
    request: Request,
    response: Response,
    body: JobCreate,
    ctx: Context,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=160,
            pattern=_IDEMPOTENCY_PATTERN,
            description="Resending a POST with the same key gives back the same job.",
        ),
    ] = None,
) -> dict[str, object]:
    spec = _spec(ctx, body)
    if idempotency_key is not None:
        key = api_key_of(request)
        owner = f"key{key.id}" if key is not None else "anonymous"
        spec = dataclasses.replace(spec, idempotency_key=f"{owner}:{idempotency_key}")
    job = ctx.queue.enqueue(spec)
    if idempotency_key is not None and not _same_request(job, spec):
        raise ApiProblem(
            409,
            "This Idempotency-Key was already used for a different job.",
            details=[{"field": "Idempotency-Key", "issue": f"already used for job {job.id}"}],
        )
    response.headers["Location"] = status_url(job.id)
    data = {"job_id": job.id, "status": job.status, "status_url": status_url(job.id)}
    return success(request.scope, data)


@router.get("/jobs", response_model=Page[JobOut], summary="List jobs, newest first")
def list_jobs(
    request: Request,
    ctx: Context,
    status: JobStatusName | None = None,
    pipeline: Annotated[str | None, Query(max_length=200, pattern=NAME_PATTERN)] = None,
    kind: Annotated[str | None, Query(max_length=100, pattern=_KIND_PATTERN)] = None,
    limit: Annotated[int, Query(description="Page size, clamped to 1..100.")] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only jobs with a smaller id.")
    ] = None,
) -> dict[str, object]:
    size = clamp_limit(limit)
    found = ctx.queue.list(
        JobFilter(status=status, pipeline=pipeline, kind=kind, limit=size + 1, before=before)
    )
    page = found[:size]
    more = len(found) > size
    return success(
        request.scope,
        [job.to_dict() for job in page],
        limit=size,
        next_before=page[-1].id if more and page else None,
    )


@router.get("/jobs/{job_id}", response_model=Envelope[JobOut], summary="One job")
def get_job(request: Request, ctx: Context, job_id: JobId) -> dict[str, object]:
    job = ctx.queue.get(job_id)
    if job is None:
        raise not_found(f"Job {job_id}")
    return success(request.scope, job.to_dict())


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=Envelope[JobOut],
    responses={409: {"model": ErrorEnvelope, "description": "CONFLICT: already finished"}},
    summary="Cancel a job",
    description=(
        "A queued job is cancelled at once; a running one is asked to stop at its next "
        "batch (`cancel_requested`). 409 when the job has already finished."
    ),
)
def cancel_job(request: Request, ctx: Context, job_id: JobId) -> dict[str, object]:
    job = ctx.queue.get(job_id)
    if job is None:
        raise not_found(f"Job {job_id}")
    if job.done:
        raise conflict(f"Job {job_id} has already finished ({job.status}).")
    after = ctx.queue.cancel(job_id)
    if after is None:
        raise not_found(f"Job {job_id}")
    if after.status in ("completed", "failed"):
        raise conflict(f"Job {job_id} finished ({after.status}) before it could be cancelled.")
    return success(request.scope, after.to_dict())
