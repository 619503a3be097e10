"""Pydantic models of `pipelines:`: what moves from which resource to where.

```yaml
pipelines:
  customers_to_db:
    source: shop.customers
    destination: {sql: customers}
    write: merge
  customers_to_commerce:
    source: shop.customers
    destination: commerce.customers
    fields:
      email: email
      first_name: first_name
      full_name: "{first_name} {last_name}"
      city: address.city
    match: [email]
    conflict: newest_wins
    timestamps: {source: updated_at, target: updated_at}
    schedule: "*/15 * * * *"
```
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._cron import check_cron

__all__ = [
    "ACCOUNT_NAME",
    "ACCOUNT_PLACEHOLDER",
    "CONFLICT_POLICIES",
    "DELETE_MODES",
    "WRITE_MODES",
    "DestinationConfig",
    "PipelineConfig",
    "TimestampsConfig",
    "is_reserved_table",
]

WRITE_MODES = ["append", "replace", "merge"]
DELETE_MODES = ["soft", "hard"]
CONFLICT_POLICIES = ["source_wins", "target_wins", "newest_wins", "manual"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ACCOUNT_PLACEHOLDER = "{account}"
"""In an SQL destination's table name: the account a run acts for (`customers_{account}`)."""
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,199}$")
"""What a connected account may be called: a provider's account id, an e-mail address.
Check with `fullmatch` (`match` lets a trailing newline through `$`)."""
# interlink's own tables (and its staging and scratch tables), Procrastinate's, Alembic's,
# and the catalogs of SQLite and PostgreSQL: a pipeline writing there would alter them.
_RESERVED_PREFIXES = ("interlink_", "procrastinate_", "sqlite_", "pg_")
_RESERVED_NAMES = ("alembic_version",)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DestinationConfig(_Model):
    """Where records go: a table of the configured database, or a writable resource."""

    sql: str | None = None
    resource: str | None = None
    primary_key: str | list[str] | None = None
    """For `sql`: the key column(s) of `merge`; default the source resource's primary key."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `destination: commerce.customers` and `destination: sql:customers`.
        if isinstance(value, str):
            if value.startswith("sql:"):
                return {"sql": value[4:].strip()}
            return {"resource": value}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> DestinationConfig:
        if (self.sql is None) == (self.resource is None):
            raise ValueError("expected exactly one of sql: TABLE or resource: CONNECTION.NAME")
        if self.sql is not None and not _NAME.match(self.sql.replace(ACCOUNT_PLACEHOLDER, "a")):
            raise ValueError(
                f"table names are letters, digits and '_', starting with a letter; got {self.sql!r}"
            )
        if self.sql is not None and self.sql.count(ACCOUNT_PLACEHOLDER) > 1:
            raise ValueError(f"{ACCOUNT_PLACEHOLDER} may appear once in a table name")
        if self.sql is not None and is_reserved_table(self.sql):
            raise ValueError(
                f"{self.sql!r} is a reserved name (tables starting with interlink_, sqlite_, "
                "pg_ or procrastinate_, and alembic_version, belong to interlink or the "
                "database); choose another table"
            )
        if self.resource is not None and "." not in self.resource:
            raise ValueError(f"expected a resource as connection.name; got {self.resource!r}")
        return self

    @property
    def is_sql(self) -> bool:
        return self.sql is not None


def is_reserved_table(name: str) -> bool:
    """Say whether a table name belongs to interlink or the database (case does not matter:
    PostgreSQL folds unquoted names, SQLite ignores case)."""
    lowered = name.lower()
    return lowered.startswith(_RESERVED_PREFIXES) or lowered in _RESERVED_NAMES


class TimestampsConfig(_Model):
    """The fields that say when a record last changed, on each side (for conflicts)."""

    source: str | None = None
    target: str | None = None


class PipelineConfig(_Model):
    """One pipeline: source resource -> field mapping and filter -> destination."""

    source: str
    destination: DestinationConfig
    fields: Literal["all"] | dict[str, Any] = "all"
    filter: str | dict[str, Any] | None = None
    write: Literal["append", "replace", "merge"] = "merge"
    """SQL destinations; API destinations always create or update through bindings."""
    match: list[str] = Field(default_factory=list)
    """Destination fields that identify an existing record to bind to instead of creating."""
    conflict: Literal["source_wins", "target_wins", "newest_wins", "manual"] = "source_wins"
    timestamps: TimestampsConfig = TimestampsConfig()
    schedule: str | None = None
    """Cron, UTC: 5 fields, or 6 with seconds last; `@hourly`, `@daily`... (see `_cron`)."""
    concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    """Records written at once to an API destination (within its rate limit)."""
    incremental: bool = True
    """Read only what changed since the last run when the source supports it."""
    deletes: Literal["soft", "hard"] | None = None
    """SQL destinations: what happens to rows the source no longer has. `soft` sets their
    `_deleted_at` column, `hard` deletes them. Applied after a complete full read (rows it
    did not see) and to records `deleted_field` marks deleted; never on an incomplete read."""
    deleted_field: str | None = None
    """A field by which the API reports a deleted record (`deleted: true`, `is_deleted`,
    a non-null `deleted_at`); needs `deletes`."""
    on_source_change: Literal["fail", "full_refresh"] = "fail"
    """When the source resource's path, params, pagination, records or incremental settings
    changed since the stored cursor was made: `fail` (the run stops and asks for
    `--full-refresh`) or `full_refresh` (the stored cursor is dropped and the source read
    whole)."""

    retry_failed: Annotated[int, Field(ge=0, le=100_000)] = 1000
    """Records that failed in earlier runs and are still owed (`interlink failed list`),
    fetched again by id at the end of each read, those tried longest ago first; the rest
    (all of them for a source that cannot be fetched by id, or with 0) count as failed in
    the run."""

    account: str | None = None
    """The connected account of the source's `oauth2` connection the pipeline acts for, or
    `"*"`: once for every connected account (an SQL table then names `{account}`)."""

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is None or value == "*" or ACCOUNT_NAME.fullmatch(value):
            return value
        raise ValueError(
            "expected an account name (letters, digits and _ . @ + -, at most 200) or "
            f"'*' for every connected account; got {value!r}"
        )

    @field_validator("match", mode="before")
    @classmethod
    def _one_field(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("source")
    @classmethod
    def _resource_name(cls, value: str) -> str:
        if "." not in value:
            raise ValueError(f"expected a resource as connection.name; got {value!r}")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @model_validator(mode="after")
    def _coherent(self) -> PipelineConfig:
        if self.destination.is_sql and (self.match or self.conflict != "source_wins"):
            raise ValueError(
                "match and conflict apply to API destinations; an SQL table is upserted by key"
            )
        if (self.deletes or self.deleted_field) and not self.destination.is_sql:
            raise ValueError("deletes and deleted_field apply to SQL destinations")
        if self.deleted_field and not self.deletes:
            raise ValueError("deleted_field needs deletes: soft or deletes: hard")
        if self.deletes and self.write == "append":
            raise ValueError(
                "deletes need a key to find rows by: use write: merge (or replace), not append"
            )
        if self.deletes == "soft" and self.write == "replace":
            raise ValueError(
                "write: replace already drops the rows the source no longer has; use "
                "write: merge with deletes: soft to keep them, marked in _deleted_at"
            )
        table = self.destination.sql
        if table is not None and self.account == "*" and ACCOUNT_PLACEHOLDER not in table:
            raise ValueError(
                f"account: '*' writes every account's records: the table must name "
                f"{ACCOUNT_PLACEHOLDER} (such as {table}_{ACCOUNT_PLACEHOLDER}) so that one "
                "account's run never replaces or deletes another's rows"
            )
        if self.conflict == "newest_wins" and not (
            self.timestamps.source and self.timestamps.target
        ):
            raise ValueError(
                "conflict: newest_wins needs timestamps: {source: FIELD, target: FIELD}"
            )
        return self
