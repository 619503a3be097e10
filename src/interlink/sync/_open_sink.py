"""A pipeline's settings by name (`pipeline_config`), and the destination its runs write
to (`open_sink`): a table (`SqlSink`) or an API resource (`ApiSink`)."""

from __future__ import annotations

from typing import Any

from interlink.config import InterlinkConfig, PipelineConfig
from interlink.connectors import Catalog, Resource
from interlink.errors import ConfigError
from interlink.store import Store

from ._accounts import account_table, state_key
from ._sink import Sink
from ._sql_sink import SqlSink

__all__ = ["open_sink", "pipeline_config"]


def pipeline_config(config: InterlinkConfig, name: str) -> PipelineConfig:
    """Pipeline `name` of the config; ConfigError naming the known ones when there is none."""
    try:
        return config.pipelines[name]
    except KeyError:
        known = ", ".join(config.pipelines) or "none defined"
        raise ConfigError(f"unknown pipeline {name!r}; known: {known}", key="pipelines") from None


def open_sink(
    store: Store,
    name: str,
    pipeline: PipelineConfig,
    catalog: Catalog,
    source: Resource,
    mapping: Any,
    *,
    account: str = "",
) -> Sink:
    """The destination of pipeline `name`, for `account`: its own table when the table
    names `{account}`, its own bindings and conflicts at an API."""
    if pipeline.destination.is_sql:
        assert pipeline.destination.sql is not None
        table = account_table(name, pipeline.destination.sql, account, dialect=store.dialect)
        return SqlSink(store, table, pipeline, key=source.primary_key)
    assert pipeline.destination.resource is not None
    from ._api_sink import ApiSink  # its bindings are SQLAlchemy statements

    return ApiSink(
        store,
        state_key(name, account),
        pipeline,
        catalog.writable(pipeline.destination.resource),
        source_key=source.primary_key,
        fields=mapping.fields,
    )
