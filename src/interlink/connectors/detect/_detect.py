"""`detect(url)`: a few requests to one list URL, and what they show about it.

Page 1 as the URL gives it; page 2 by each pagination candidate until one is proven (see
`_paging`); then, when the records carry a change time, one or two filtered requests to see
whether the API filters on it. Everything goes through the connection's `ApiClient`, so
auth, retries and `Retry-After` work as in a real read. At most `budget` requests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from interlink.config import ConnectionConfig
from interlink.connectors._cursor import cursor_key
from interlink.http import ApiClient, origin_of

from ._credentials import Credentials, Secrets
from ._model import Detection, DetectionError, Finding
from ._paging import announced_total, detect_paging, looks_like_page_param
from ._probe import NOT_JSON, Answer, Prober
from ._shape import find_incremental_field, find_primary_key, find_records, select_records

__all__ = ["connection_name", "detect", "resource_name"]

_FILTERS = {
    "snake": ("updated_since", "since", "{field}_min"),
    "camel": ("updatedSince", "since", "updatedAfter"),
}


def resource_name(url: str) -> str:
    """A name for the list at `url`: its last path segment that is not a number."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    for part in reversed(parts):
        stem = part.split(".")[0]
        if stem and not stem.isdigit() and not re.fullmatch(r"v\d+", stem):
            name = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_")
            if name:
                return name if name[0].isalpha() else f"r_{name}"
    return "records"


def connection_name(url: str) -> str:
    """A name for the API at `url`: the telling label of its host (`api.github.com`: github)."""
    host = urlsplit(url).hostname or ""
    if not host or host == "localhost" or re.fullmatch(r"[\d.]+|[0-9a-f:]+", host):
        return "api"
    labels = [label for label in host.split(".")[:-1] if label not in ("www", "api", "rest")]
    name = re.sub(r"[^a-z0-9_]+", "_", (labels[-1] if labels else host.split(".")[0]).lower())
    return name.strip("_") or "api"


def _refusal(answer: Answer, credentials: Credentials) -> DetectionError:
    status = answer.status
    if status in (401, 403):
        challenge = answer.headers.get("www-authenticate", "").lower()
        if credentials.given:
            advice = "the credentials given were refused; check them"
        elif challenge.startswith("basic"):
            advice = "add --basic user:password"
        elif challenge.startswith("bearer"):
            advice = "add --bearer TOKEN"
        else:
            advice = (
                "add credentials: --bearer TOKEN, --header 'Name: value', "
                "--api-key-param name=value or --basic user:password"
            )
        word = "401 Unauthorized" if status == 401 else "403 Forbidden"
        return DetectionError(f"the API answered {word}: {advice}")
    if status == 404:
        return DetectionError("the API answered 404 Not Found: check the URL's path")
    return DetectionError(f"the API answered {status}: {answer.text[:120]}")


async def _filter_test(
    prober: Prober,
    url: str,
    params: dict[str, Any],
    field: str,
    value: Any,
    count: int,
    total: int | None,
    records_path: str | None,
    format: str,
) -> Finding:
    style = "camel" if re.search(r"[a-z][A-Z]", field) else "snake"
    tried: list[str] = []
    floor = cursor_key(value)
    for template in _FILTERS[style]:
        if prober.left <= 0:
            break
        param = template.format(field=field)
        if param in params:
            continue
        tried.append(param)
        answer = await prober.get(url, {**params, param: value})
        if answer.status >= 400 or answer.body is NOT_JSON:
            continue
        found = select_records(answer.body, records_path, format)
        values = [record.get(field) for record in found]
        try:
            past = bool(found) and all(v is not None and not cursor_key(v) < floor for v in values)
        except (ValueError, TypeError):
            past = False
        if past and len(found) < count:
            return Finding(
                {"field": field, "param": param},
                "sure",
                f"`{param}={value}` shrank the answer from {total or count} to {len(found)} "
                f"records, all with `{field}` at or past it",
            )
    said = ", ".join(f"`{p}`" for p in tried) or "no parameter"
    return Finding(
        {"field": field, "param": None},
        "likely",
        f"every record has `{field}` as a time; the API did not filter on {said}, so "
        "interlink reads everything and keeps what changed",
    )


async def detect(
    url: str,
    credentials: Credentials | None = None,
    *,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    budget: int = 12,
) -> tuple[Detection, Secrets]:
    """Look at the list at `url` and say where its records, pages, key and change time are.

    Raises DetectionError (with what to do) for an answer that is not a list of records:
    a 401, an HTML page, one object, an empty list, pages that repeat.
    """
    credentials = credentials or Credentials()
    split = urlsplit(url)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise DetectionError(f"expected an http:// or https:// URL; got {url!r}")
    resource = name or resource_name(url)
    connection = connection_name(url)
    secrets = Secrets.of(credentials, connection, os.environ if env is None else env)
    base_url = origin_of(url)
    query = dict(parse_qsl(split.query, keep_blank_values=True))
    kept = {k: v for k, v in query.items() if not looks_like_page_param(k)}
    config = ConnectionConfig.model_validate(
        {
            "base_url": base_url,
            "auth": secrets.auth,
            "headers": secrets.headers,
            "retry": {"max_attempts": 3, "max_retry_after": 30},
            "transport": "httpx",
        }
    )
    path = split.path or "/"
    async with ApiClient.from_config(connection, config, transport=transport) as client:
        prober = Prober(client, budget=budget)
        first = await prober.get(path, query)
        if first.status >= 400:
            raise _refusal(first, credentials)
        if first.body is NOT_JSON:
            raise DetectionError(
                f"the answer is not JSON ({first.content_type}): it starts with "
                f"{first.text[:60]!r}; give the URL of a JSON list"
            )
        records_found, format, records = find_records(first.body)
        records_path = records_found.value
        key_guess = find_primary_key(records, resource, 1).value
        paging = await detect_paging(
            prober,
            first,
            records,
            records_path=records_path,
            format=format,
            key=key_guess,
            params=query,
        )
        read = [record for page in paging.pages for record in page]
        primary_key = find_primary_key(read, resource, len(paging.pages))
        incremental = Finding(None, "sure", "no record field looks like a change time")
        field = find_incremental_field(read)
        if field is not None:
            total = announced_total(first)[0]
            incremental = await _filter_test(
                prober, path, query, field[0], field[1], len(records), total, records_path, format
            )
        return (
            Detection(
                url=client.redactor.url(url),
                base_url=base_url,
                path=path,
                params=kept,
                records=records_found,
                format=format,  # type: ignore[arg-type]
                paginate=paging.finding,
                primary_key=primary_key,
                incremental=incremental,
                sample=read,
                requests=prober.sent,
                notes=paging.notes,
            ),
            secrets,
        )
