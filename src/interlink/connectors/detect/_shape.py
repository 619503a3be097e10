"""Reading one page's shape: where its records are, their key and their change-time field.

Pure functions over parsed bodies; no requests.
"""

from __future__ import annotations

import re
from typing import Any

from interlink.connectors._cursor import cursor_key
from interlink.connectors._jsonapi import flatten_resource

from ._model import Confidence, DetectionError, Finding

__all__ = [
    "find_incremental_field",
    "find_primary_key",
    "find_records",
    "is_jsonapi",
    "select_records",
]

# Where lists usually sit, best first; any other single list of objects is taken too.
_LIST_KEYS = ("data", "items", "results", "records", "entries", "rows", "hits", "values", "list")

_TIME_FIELDS = (
    "updated_at",
    "updatedAt",
    "updated",
    "modified_at",
    "modifiedAt",
    "modified",
    "last_modified",
    "lastModified",
    "date_modified",
    "dateModified",
    "last_updated",
    "lastUpdated",
    "updated_on",
    "updatedOn",
    "changed_at",
    "changedAt",
    "modified_date",
    "modifiedDate",
    "updated_date",
    "updatedDate",
    "update_time",
    "updateTime",
    "sys_updated_on",
)


def _objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def is_jsonapi(body: Any) -> bool:
    """A JSON:API document: `data` is a list of resource objects (`type`, `id`, attributes)."""
    if not isinstance(body, dict) or not _objects(body.get("data")):
        return False
    data = body["data"]
    return bool(data) and all(
        "type" in item and "id" in item and isinstance(item.get("attributes", {}), dict)
        for item in data
    )


def _lists(body: dict[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, list[Any]]]:
    """Every list of objects (or empty list) in `body`, two levels deep, by dotted path."""
    found: list[tuple[str, list[Any]]] = []
    for key, value in body.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][\w-]*", key):
            continue
        path = f"{prefix}{key}"
        if _objects(value):
            found.append((path, value))
        elif isinstance(value, dict) and depth < 1:
            found.extend(_lists(value, f"{path}.", depth + 1))
    return found


def find_records(body: Any) -> tuple[Finding, str, list[dict[str, Any]]]:
    """(where the records are, the format, the records) of a page; DetectionError when
    the body holds no list of records."""
    if isinstance(body, list):
        if not body:
            raise DetectionError("the list is empty: there is nothing to learn its shape from")
        if not _objects(body):
            kind = type(body[0]).__name__
            raise DetectionError(f"the body is a list of {kind} values, not of records")
        finding = Finding(None, "sure", f"the body is a list of {len(body)} objects")
        return finding, "json", body
    if not isinstance(body, dict):
        raise DetectionError(f"the body is a JSON {type(body).__name__}, not a list of records")
    if is_jsonapi(body):
        records = [flatten_resource(item) for item in body["data"]]
        evidence = f"JSON:API: `data` holds {len(records)} resource objects (type, id, attributes)"
        return Finding(None, "sure", evidence), "jsonapi", records
    lists = _lists(body)
    full = [(path, value) for path, value in lists if value]
    if not full:
        if lists:
            path = lists[0][0]
            raise DetectionError(
                f"the list at `{path}` is empty: there is nothing to learn its shape from; "
                "give the URL of a list that has records"
            )
        keys = ", ".join(list(body)[:8])
        raise DetectionError(
            f"the answer is one object (keys: {keys}), not a list of records; give the URL "
            "of a list endpoint"
        )
    known = [item for item in full if item[0].rsplit(".", 1)[-1] in _LIST_KEYS]
    path, records = (known or full)[0]
    if len(full) == 1:
        return (
            Finding(path, "sure", f"the only list of objects: {len(records)} at `{path}`"),
            ("json"),
            records,
        )
    others = ", ".join(f"`{p}`" for p, _ in full if p != path)
    confidence: Confidence = "likely" if known else "guess"
    evidence = f"{len(records)} objects at `{path}`, chosen over {others}"
    return Finding(path, confidence, evidence), "json", records


def select_records(body: Any, path: str | None, format: str) -> list[dict[str, Any]]:
    """The records of a later page, read the way page 1's were found."""
    if format == "jsonapi":
        data = body.get("data") if isinstance(body, dict) else None
        return [flatten_resource(item) for item in data] if isinstance(data, list) else []
    value: Any = body
    if path:
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and value != ""


def find_primary_key(records: list[dict[str, Any]], resource: str, pages: int) -> Finding:
    """The field that names each record: present in every record and unique across them."""
    singular = resource[:-1] if resource.endswith("s") else resource
    names = ["id", "uuid", "_id", "guid", f"{singular}_id", f"{singular}Id", "key"]
    names += sorted({key for key in records[0] if key.endswith(("_id", "Id")) and key not in names})
    where = "on the 2 pages read" if pages > 1 else "on the page read"
    for name in names:
        values = [record.get(name) for record in records]
        if not all(_scalar(value) for value in values):
            continue
        if len(set(values)) != len(values):
            continue
        confidence: Confidence = "sure" if name in ("id", "uuid") and pages > 1 else "likely"
        return Finding(
            name, confidence, f"`{name}` is unique across the {len(values)} records {where}"
        )
    return Finding(None, "guess", "no field is present and unique in every record read")


def find_incremental_field(records: list[dict[str, Any]]) -> tuple[str, Any] | None:
    """(a change-time field every record has as a time, its highest value), if any."""
    present = {key.lower(): key for key in records[0]}
    for candidate in _TIME_FIELDS:
        name = present.get(candidate.lower())
        if name is None:
            continue
        values = [record.get(name) for record in records]
        if all(_epoch(value) for value in values):
            # Unix times (seconds or milliseconds): compared as numbers, sent as they are.
            return name, max(value for value in values if value is not None)
        if not all(isinstance(value, str) for value in values):
            continue
        try:
            keys = [cursor_key(value) for value in values]
            top = max(range(len(keys)), key=keys.__getitem__)
        except (ValueError, TypeError):
            continue
        if isinstance(keys[top], int | float) or not hasattr(keys[top], "year"):
            continue
        return name, values[top]
    return None


def _epoch(value: Any) -> bool:
    """A Unix time in seconds or milliseconds between 2001 and 2096 (not a bool, not an
    id-like small number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 1e9 <= value < 4e9 or 1e12 <= value < 4e12
