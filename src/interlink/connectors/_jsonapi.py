"""JSON:API (jsonapi.org 1.1) documents <-> flat records.

A resource object `{"type": "customers", "id": "7", "attributes": {...}, "relationships":
{"owner": {"data": {"type": "users", "id": "1"}}}}` becomes the record
`{"id": "7", "type": "customers", ...attributes, "relationships": {"owner": "1"}}`:
relationships are kept as ids (a list of ids for to-many, None when empty).
"""

from __future__ import annotations

from typing import Any

from ._page import Record

__all__ = ["MEDIA_TYPE", "document_for", "flatten_resource"]

MEDIA_TYPE = "application/vnd.api+json"


def _ids(linkage: Any) -> Any:
    if isinstance(linkage, list):
        return [item.get("id") for item in linkage if isinstance(item, dict)]
    if isinstance(linkage, dict):
        return linkage.get("id")
    return None


def flatten_resource(obj: Any) -> Record:
    """A JSON:API resource object as a flat record."""
    if not isinstance(obj, dict):
        return {"value": obj}
    record: Record = {"id": obj.get("id"), "type": obj.get("type")}
    attributes = obj.get("attributes")
    if isinstance(attributes, dict):
        for key, value in attributes.items():
            if key not in ("id", "type"):
                record[key] = value
    relationships = obj.get("relationships")
    if isinstance(relationships, dict):
        record["relationships"] = {
            name: _ids(rel.get("data")) if isinstance(rel, dict) else None
            for name, rel in relationships.items()
        }
    return record


def document_for(record: Record, resource_type: str, *, id: str | None = None) -> dict[str, Any]:
    """The JSON:API document that creates (no id) or updates (with id) a record.

    `id`, `type` and `relationships` are taken out of the attributes; relationships given
    in JSON:API form (`{"owner": {"data": {...}}}`) are passed through as they are.
    """
    attributes = {k: v for k, v in record.items() if k not in ("id", "type", "relationships")}
    data: dict[str, Any] = {"type": resource_type, "attributes": attributes}
    if id is not None:
        data["id"] = str(id)
    relationships = record.get("relationships")
    if isinstance(relationships, dict):
        passed = {
            name: rel
            for name, rel in relationships.items()
            if isinstance(rel, dict) and "data" in rel
        }
        if passed:
            data["relationships"] = passed
    return {"data": data}
