"""What `interlink check` verifies beyond loading the config: the parts that only show
when pipelines and resources are built.

A pipeline's filter and field mapping are compiled, its `call:` functions imported, its API
destination must be a REST resource, and a custom paginator must import and accept its
options: exactly what `interlink run` does before it reads anything, so a config `check`
passes is not refused by `run`. `run` and `worker` call this too, before they open the
database or start a progress display, so the error is the one line `check` prints.
"""

from __future__ import annotations

from collections.abc import Iterable

from interlink.config import InterlinkConfig, RestResourceConfig
from interlink.errors import ConfigError

__all__ = ["check_buildable"]


def check_buildable(config: InterlinkConfig, *, pipelines: Iterable[str] | None = None) -> None:
    """Compile every pipeline and every custom paginator, or only those `pipelines` use.

    Raises one ConfigError whose `.errors` lists every problem found; the keys name the
    pipeline or resource, and the CLI adds the file and line.
    """
    names = list(config.pipelines) if pipelines is None else list(pipelines)
    errors: list[ConfigError] = []
    sources: list[str] = []
    for name in names:
        errors.extend(_pipeline_errors(config, name))
        if name in config.pipelines:
            sources.append(config.pipelines[name].source)
    resources = config.resource_names() if pipelines is None else sources
    for resource in dict.fromkeys(resources):
        errors.extend(_paginator_errors(config, resource))
    if errors:
        first = errors[0]
        first.errors = errors
        raise first


def _pipeline_errors(config: InterlinkConfig, name: str) -> list[ConfigError]:
    from interlink.sync import compile_filter, compile_mapping

    pipeline = config.pipelines.get(name)
    if pipeline is None:
        known = ", ".join(config.pipelines) or "none defined"
        return [ConfigError(f"unknown pipeline {name!r}; known: {known}", key="pipelines")]
    where = f"pipelines.{name}"
    errors: list[ConfigError] = []
    try:
        compile_mapping(pipeline.fields, where=f"{where}.fields")
    except ConfigError as exc:
        errors.append(exc)
    try:
        compile_filter(pipeline.filter, where=f"{where}.filter")
    except ConfigError as exc:
        errors.append(exc)
    target = pipeline.destination.resource
    if target is not None:
        settings = config.resource(target)[2]
        if not isinstance(settings, RestResourceConfig):
            errors.append(
                ConfigError(
                    f"{target} is a {settings.type} resource; only REST resources can be written",
                    key=f"{where}.destination",
                )
            )
    return errors


def _paginator_errors(config: InterlinkConfig, resource: str) -> list[ConfigError]:
    from interlink.connectors import create_paginator

    connection, name, settings = config.resource(resource)
    if settings.paginate.type != "custom":
        return []
    try:
        create_paginator(settings.paginate)
    except Exception as exc:
        # Your paginator's own __init__ runs here, whatever it raises.
        reason = " ".join(str(exc).split()) or type(exc).__name__
        key = f"resources.{connection}.{name}.paginate"
        return [ConfigError(f"cannot build the paginator: {reason}", key=key)]
    return []
