"""Pydantic models of what the API takes and gives, for validation and the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from interlink.config import ACCOUNT_NAME

__all__ = [
    "AppPipeline",
    "AppStatus",
    "DatabaseHealth",
    "Envelope",
    "ErrorBody",
    "ErrorDetail",
    "ErrorEnvelope",
    "Health",
    "JobConfig",
    "JobCreate",
    "JobCreated",
    "JobOut",
    "JobStatusName",
    "Meta",
    "Page",
    "PageMeta",
    "PipelineOut",
    "RunOut",
]

T = TypeVar("T")

JobStatusName = Literal["queued", "running", "completed", "failed", "cancelled"]
MAX_ID = 2**63 - 1
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"


class Meta(BaseModel):
    timestamp: str = Field(description="When the answer was made, ISO-8601 UTC.")
    request_id: str = Field(description="Also in the X-Request-ID header.")


class PageMeta(Meta):
    limit: int = Field(description="The page size used (1..100).")
    next_before: int | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page."
    )


class Envelope(BaseModel, Generic[T]):
    status: Literal["success"]
    data: T
    meta: Meta


class Page(BaseModel, Generic[T]):
    status: Literal["success"]
    data: list[T]
    meta: PageMeta


class ErrorDetail(BaseModel):
    field: str | None
    issue: str


class ErrorBody(BaseModel):
    code: str = Field(description="A stable code such as VALIDATION_ERROR or NOT_FOUND.")
    message: str
    details: list[ErrorDetail]


class ErrorEnvelope(BaseModel):
    status: Literal["error"]
    error: ErrorBody
    meta: Meta


# -- jobs ---------------------------------------------------------------------------------


def _integral(value: Any) -> Any:
    # JSON has one number type: 5.0 is the integer 5 (JSON Schema agrees), 5.5 is not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer may arrive as `5` or `5.0`, never as `"5"` or `true` (the model is strict).
# The bounds go before the validator, or pydantic leaves them out of the JSON schema.
_INTEGRAL = BeforeValidator(_integral)
# An account's name as interlink.yaml takes it (config.ACCOUNT_NAME), or `*`: every one.
_ACCOUNT = rf"^(\*|{ACCOUNT_NAME.pattern.removeprefix('^').removesuffix('$')})$"


JOB_TYPES: dict[str, str] = {"pipeline": "pipeline.run", "noop": "noop"}
"""A job's `type` (the console guide's name) -> its `kind` (interlink's)."""
CONFIG_KEYS = ("pipeline", "account", "full_refresh", "dry_run", "limit")
"""What a `config` object may hold: the flat body's fields of a pipeline run."""


class JobCreate(BaseModel):
    """A job to run: a pipeline (`type: pipeline`, the default) or a `noop`.

    Two shapes: the console guide's `{"config": {"pipeline": "customers", "full_refresh":
    true}, "type": "pipeline"}`, or the same fields flat beside `kind`/`type`.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        # A pipeline run names its pipeline (flat or in `config`); only a noop may not.
        json_schema_extra={
            "anyOf": [
                {"required": ["pipeline"]},
                {"required": ["config"]},
                {"required": ["kind"], "properties": {"kind": {"const": "noop"}}},
                {"required": ["type"], "properties": {"type": {"const": "noop"}}},
            ],
            # `kind` and `type` are two names of one field; a run's fields go in `config`
            # or flat, never both.
            "not": {"required": ["kind", "type"]},
            "dependentSchemas": {
                "config": {"not": {"anyOf": [{"required": [key]} for key in CONFIG_KEYS]}}
            },
        },
    )

    config: dict[str, Any] | None = Field(
        None,
        description="The console guide's shape: the run's fields in one object "
        f"({', '.join(CONFIG_KEYS)}); not together with those fields flat.",
    )
    type: Literal["pipeline", "noop"] | None = Field(
        None, description="The guide's name for `kind`: pipeline (the default) or noop."
    )

    pipeline: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="The pipeline to run; required for pipeline.run."
    )
    kind: Literal["pipeline.run", "noop"] = "pipeline.run"
    account: Annotated[str, Field(max_length=200, pattern=_ACCOUNT)] | None = Field(
        None,
        description="The connected account of the source's oauth2 connection the run acts "
        "for, or `*` for each in turn; default: the pipeline's `account:`.",
    )
    full_refresh: bool = False
    dry_run: bool = False
    limit: Annotated[int, Field(ge=1, le=1_000_000_000), _INTEGRAL] | None = None
    priority: Annotated[int, Field(ge=-1000, le=1000), _INTEGRAL] = 0

    @field_validator("pipeline", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        # Leaving the field out is fine for a noop; an explicit null is a mistake.
        if value is None:
            raise ValueError("expected a pipeline name, not null")
        return value

    @field_validator("config", "type", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("leave the field out rather than send null")
        return value


class JobConfig(BaseModel):
    """The `config` of the console guide's body: one pipeline run (documentation only; the
    route reads `config` itself, to answer unknown keys with 400 as the guide does)."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(description="The pipeline to run (one of this server's).")
    account: Annotated[str, Field(max_length=200, pattern=_ACCOUNT)] | None = None
    full_refresh: bool = False
    dry_run: bool = False
    limit: Annotated[int, Field(ge=1, le=1_000_000_000)] | None = None


class JobCreated(BaseModel):
    job_id: int
    status: JobStatusName
    status_url: str


class JobOut(BaseModel):
    id: int
    type: str = Field(description="pipeline or noop (the console guide's name for kind).")
    kind: str = Field(description="pipeline.run or noop (interlink's name, kept).")
    pipeline: str | None
    args: dict[str, Any]
    status: JobStatusName
    priority: int
    attempts: int
    max_attempts: int
    created_at: float = Field(description="Epoch seconds, as every time of a job.")
    run_at: float
    started_at: float | None
    finished_at: float | None
    cancel_requested: bool
    progress: dict[str, Any] | None
    result: dict[str, Any] | None = Field(
        description="For pipeline.run: run_id, status, counts, errors, elapsed."
    )
    error: str | None


# -- pipelines, runs, apps, health -------------------------------------------------------------


class RunOut(BaseModel):
    id: int
    pipeline: str
    account: str = Field(description="The connected account it ran for; '' for the default.")
    status: str
    started_at: float
    finished_at: float | None
    full_refresh: bool
    dry_run: bool
    resumed: bool
    counts: dict[str, int] = Field(
        description="pages, read, created, updated, unchanged, failed, skipped."
    )
    errors: list[dict[str, Any]]
    message: str | None


class PipelineOut(BaseModel):
    name: str
    source: str
    destination: str = Field(description="`sql:TABLE` or a resource `connection.name`.")
    write: str
    schedule: str | None
    last_run: RunOut | None
    failed_records: int = Field(
        description="Records that failed in a run and are not in the destination yet (every "
        "account's): each run fetches them again by id until written or given up."
    )


class AppPipeline(BaseModel):
    name: str
    role: Literal["source", "destination"]
    last_run: RunOut | None


class AppStatus(BaseModel):
    name: str
    base_url: str = Field(description="With any secret in it masked.")
    auth: str = Field(description="The auth type only; never its secrets.")
    resources: list[str]
    pipelines: list[AppPipeline]
    jobs: dict[str, int] = Field(description="Queued and running jobs of those pipelines.")


class DatabaseHealth(BaseModel):
    backend: str
    reachable: bool


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    database: DatabaseHealth
    queue: dict[str, int]
    worker: Literal["running", "stopped", "off"]
