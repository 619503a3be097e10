"""A `Detection` as a commented `interlink.yaml`: connection, resource and SQLite pipeline.

Every line that rests on a guess has a `# detected (how sure): why` comment above it, so
the file reads as its own explanation. Secrets are `${VAR}` references only.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import orjson

from ._credentials import Secrets
from ._model import Detection, Finding

__all__ = ["detection_yaml"]

_PLAIN = re.compile(r"^[A-Za-z_/$][\w./$\[\]{}:@-]*$")
_FLOW_PLAIN = re.compile(r"^[A-Za-z_/][\w./:@-]*$")
_RESERVED = re.compile(r"^(interlink_|procrastinate_|sqlite_|pg_|alembic_version$)", re.I)


def _scalar(value: Any, *, flow: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    plain = (_FLOW_PLAIN if flow else _PLAIN).match(text)
    if plain and text.lower() not in ("true", "false", "null", "yes", "no", "on", "off", "y", "n"):
        return text
    return orjson.dumps(text).decode()


def _flow(mapping: dict[str, Any]) -> str:
    parts = []
    for key, value in mapping.items():
        shown = _flow(value) if isinstance(value, dict) else _scalar(value, flow=True)
        parts.append(f"{_scalar(key, flow=True)}: {shown}")
    return "{" + ", ".join(parts) + "}"


def _comment(indent: int, finding: Finding, prefix: str = "detected") -> list[str]:
    text = f"{prefix} ({finding.confidence}): {finding.evidence}"
    width = max(40, 88 - indent - 2)
    return [" " * indent + "# " + line for line in textwrap.wrap(text, width)]


def detection_yaml(
    detection: Detection,
    secrets: Secrets,
    *,
    connection: str,
    resource: str,
    command: str,
) -> str:
    """The file `interlink init --from` writes for `detection`."""
    table = resource if not _RESERVED.match(resource) else f"{resource}_records"
    lines = [
        f"# interlink.yaml written by `{command}`",
        f"# from {detection.requests} requests to {detection.url}.",
        "# Lines under a `# detected` comment are interlink's reading of the answers: check",
        "# them, then `interlink check` and `interlink run " + resource + "`.",
        "",
        "database: ${INTERLINK_DATABASE_URL:-sqlite:///.interlink/interlink.db}",
        "",
        "connections:",
        f"  {connection}:",
        f"    base_url: {_scalar(detection.base_url)}",
    ]
    auth = secrets.written_auth
    if auth.get("type") != "none":
        lines.append("    auth:")
        lines += [f"      {key}: {_scalar(value)}" for key, value in auth.items()]
    if secrets.written_headers:
        lines.append("    headers:")
        lines += [
            f"      {_scalar(name)}: {_scalar(value)}"
            for name, value in secrets.written_headers.items()
        ]
    lines += ["", "resources:", f"  {connection}:", f"    {resource}:"]
    lines.append(f"      path: {_scalar(detection.path)}")
    if detection.params:
        lines.append(f"      params: {_flow(detection.params)}")
    if detection.format == "jsonapi":
        lines += _comment(6, detection.records)
        lines.append("      format: jsonapi")
    elif detection.records.value is None:
        lines += _comment(6, detection.records, "records: the body itself")
    else:
        lines += _comment(6, detection.records)
        lines.append(f"      records: {_scalar(detection.records.value)}")
    key = detection.primary_key
    if key.value is not None:
        lines += _comment(6, key)
        lines.append(f"      primary_key: {_scalar(key.value)}")
    else:
        lines += _comment(6, key, "no primary key")
    lines += _comment(6, detection.paginate)
    paginate = dict(detection.paginate.value)
    lines.append("      paginate:")
    for name, value in paginate.items():
        if value is None:
            continue
        shown = _flow(value) if isinstance(value, dict) else _scalar(value)
        lines.append(f"        {name}: {shown}")
    incremental = detection.incremental
    if incremental.value is not None:
        lines += _comment(6, incremental)
        field = incremental.value["field"]
        param = incremental.value.get("param")
        body = f"field: {_scalar(field, flow=True)}"
        if param:
            body += f", param: {_scalar(param, flow=True)}"
        lines.append(f"      incremental: {{{body}}}")
    else:
        lines += _comment(6, incremental, "not incremental")
    lines += ["", "pipelines:", f"  {resource}:", f"    source: {connection}.{resource}"]
    lines.append(f"    destination: {{sql: {_scalar(table, flow=True)}}}")
    if key.value is not None:
        lines.append("    # merge: upsert by primary_key, so a record read twice is stored once")
        lines.append("    write: merge")
    else:
        lines.append("    # replace: without a primary key, each run rewrites the whole table")
        lines.append("    write: replace")
    return "\n".join(lines) + "\n"
