"""Which pagination a list uses: candidates read off page 1, each tried on page 2.

A candidate is accepted when page 2 has records that page 1 did not (no key in both) and
the position moved (another URL, another cursor). Candidates come in the order of the
evidence: a `Link` header, a next URL in the body, a cursor in the body, Stripe's
`has_more` with the last record's id, then offsets and page numbers (named by what the
body echoes, the URL's own parameters, or the common spellings).

A list that fits on its first page shows no pagination there. It is asked again for
pages of one record (`limit=1`, `per_page=1`, `page[size]=1`, ...): where the API honours
that, the pagination is decided and verified on those pages and written with pages of
100. Only when it does not is the list taken as one page (`type: single`, with the body's
total when there is one, so a read that outgrows the page fails instead of ending short).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import orjson

from interlink.connectors._links import parse_link_header
from interlink.connectors._totals import header_total

from ._model import Confidence, DetectionError, Finding
from ._probe import NOT_JSON, Answer, Prober
from ._shape import select_records

__all__ = ["PAGING_PARAMS", "Paging", "announced_total", "detect_paging", "looks_like_page_param"]

_NEXT_PATHS = (
    "next",
    "next_url",
    "nextUrl",
    "next_page_url",
    "next_link",
    "nextLink",
    "links.next",
    "_links.next.href",
    "_links.next",
    "paging.next",
    "pagination.next",
    "pagination.next_url",
    "meta.next",
    "meta.next_url",
)

# Cursor fields in the body -> the parameter that usually sends them back.
_CURSORS = {
    "next_cursor": "cursor",
    "nextCursor": "cursor",
    "cursor": "cursor",
    "next_page_token": "page_token",
    "nextPageToken": "pageToken",
    "next_token": "next_token",
    "nextToken": "nextToken",
    "continuation_token": "continuation_token",
    "continuationToken": "continuationToken",
    "after": "after",
    "endCursor": "after",
}
_CURSOR_PARENTS = (
    "",
    "meta.",
    "pagination.",
    "paging.",
    "response_metadata.",
    "cursors.",
    "paging.cursors.",
)

_HAS_MORE = ("has_more", "hasMore", "has_next", "hasNext", "more")

_TOTALS = (
    "total",
    "total_count",
    "totalCount",
    "count",
    "total_results",
    "totalResults",
    "total_items",
    "totalItems",
)
_TOTAL_PAGES = ("total_pages", "totalPages", "page_count", "pageCount", "last_page", "lastPage")
_TOTAL_PARENTS = ("", "meta.", "pagination.", "page.", "paging.", "data.")

_SIZES = {5, 10, 12, 15, 20, 24, 25, 30, 40, 50, 60, 64, 75, 100, 128, 150, 200, 250, 500, 1000}

PAGING_PARAMS = frozenset(
    {
        "offset", "limit", "page", "per_page", "page_size", "pageSize", "size", "cursor",
        "_page", "_limit", "page[number]", "page[size]", "page[offset]", "page[limit]",
        "starting_after", "page_info", "page_token", "pageToken", "after", "skip", "take",
    }
)  # fmt: skip
"""Query parameters of the given URL that the paginator sets itself (left off `params:`)."""


def _at(body: Any, path: str) -> Any:
    value = body
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


@dataclass(slots=True)
class Paging:
    """The pagination decided, and the pages read to decide it."""

    finding: Finding
    pages: list[list[dict[str, Any]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Candidate:
    paginate: dict[str, Any]
    evidence: str
    url: str
    params: dict[str, Any]
    confidence: Confidence = "sure"
    moved: str = ""
    by_position: bool = False


def _key_of(record: dict[str, Any], key: str | None) -> Any:
    if key is not None and key in record:
        return orjson.dumps(record[key])
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def announced_total(answer: Answer) -> tuple[int | None, str | None, str | None]:
    """(the total records announced, its body path or None for the header, total pages path)."""
    body = answer.body if isinstance(answer.body, dict) else {}
    pages_path = next(
        (
            f"{parent}{name}"
            for parent in _TOTAL_PARENTS
            for name in _TOTAL_PAGES
            if isinstance(_at(body, f"{parent}{name}"), int)
        ),
        None,
    )
    for parent in _TOTAL_PARENTS:
        for name in _TOTALS:
            value = _at(body, f"{parent}{name}")
            if isinstance(value, int) and not isinstance(value, bool):
                return value, f"{parent}{name}", pages_path
    return header_total(answer.headers), None, pages_path


def _link_candidate(first: Answer) -> _Candidate | None:
    links = parse_link_header(first.headers.get("link"))
    url = links.get("next")
    if not url or urljoin(first.url, url) == first.url:
        return None  # none, or page 1 itself: no way on
    shopify = "page_info=" in url
    what = "a cursor (`page_info`) in the `Link` header" if shopify else "the `Link` header"
    return _Candidate(
        {"type": "link_header"},
        f'{what} rel="next" on page 1 led to page 2',
        urljoin(first.url, url),
        {},
        moved="the next link changed",
    )


def _next_url_candidate(first: Answer) -> _Candidate | None:
    for path in _NEXT_PATHS:
        value = _at(first.body, path)
        if isinstance(value, str) and value.startswith(("http://", "https://", "/", "?")):
            if urljoin(first.url, value) == first.url:
                return None  # page 1 itself: no way on
            return _Candidate(
                {"type": "next_url", "next_path": path},
                f"a next URL at `{path}` on page 1 led to page 2",
                urljoin(first.url, value),
                {},
                moved="the next URL changed",
            )
    return None


def _cursor_candidates(first: Answer, params: dict[str, Any]) -> list[_Candidate]:
    found: list[_Candidate] = []
    for parent in _CURSOR_PARENTS:
        for name, param in _CURSORS.items():
            path = f"{parent}{name}"
            value = _at(first.body, path)
            if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
                continue
            if isinstance(value, str) and value.startswith(("http://", "https://", "/")):
                continue
            for sent in dict.fromkeys([param, name]):
                found.append(
                    _Candidate(
                        {"type": "cursor", "cursor_path": path, "cursor_param": sent},
                        f"a cursor at `{path}` on page 1, sent back as `{sent}`, led to page 2",
                        first.url.split("?")[0],
                        {**params, sent: value},
                        moved="the cursor changed",
                    )
                )
    return found


def _has_more_candidate(
    first: Answer, records: list[dict[str, Any]], key: str | None, params: dict[str, Any]
) -> _Candidate | None:
    if key is None or not isinstance(first.body, dict):
        return None
    for flag in _HAS_MORE:
        if first.body.get(flag) is True:
            last = records[-1].get(key)
            return _Candidate(
                {
                    "type": "cursor",
                    "cursor_field": key,
                    "cursor_param": "starting_after",
                    "stop_when": {"path": flag, "equals": False},
                },
                f"`{flag}: true` on page 1; `starting_after` = the last record's `{key}` "
                "led to page 2",
                first.url.split("?")[0],
                {**params, "starting_after": last},
                moved="the last id moved",
            )
    return None


def _position_names(
    first: Answer, params: dict[str, Any], jsonapi: bool
) -> list[tuple[str, str, str]]:
    """(kind, position parameter, size parameter) to try, best first."""
    body = first.body if isinstance(first.body, dict) else {}
    echoed = set(body) | set((body.get("meta") or {}) if isinstance(body.get("meta"), dict) else ())
    sizes = [s for s in ("per_page", "page_size", "pageSize", "limit", "size") if s in echoed]
    names: list[tuple[str, str, str]] = []
    if "offset" in echoed or "offset" in params:
        names.append(("offset", "offset", "limit"))
    if "page" in echoed or "page" in params:
        names.append(("page", "page", sizes[0] if sizes else "per_page"))
    if "_page" in params or (isinstance(first.body, list) and "x-total-count" in first.headers):
        names.append(("page", "_page", "_limit"))
    if jsonapi:
        names.append(("page", "page[number]", "page[size]"))
        names.append(("offset", "page[offset]", "page[limit]"))
    names += [
        ("offset", "offset", "limit"),
        ("page", "page", "per_page"),
        ("page", "_page", "_limit"),
    ]
    return list(dict.fromkeys(names))


def _position_candidates(
    first: Answer, count: int, params: dict[str, Any], jsonapi: bool
) -> list[_Candidate]:
    total, total_path, pages_path = announced_total(first)
    where = f"`{total_path}` says {total}" if total_path else f"X-Total-Count says {total}"
    found: list[_Candidate] = []
    base = first.url.split("?")[0]
    for kind, position, size in _position_names(first, params, jsonapi):
        if kind == "offset":
            paginate: dict[str, Any] = {
                "type": "offset",
                "offset_param": position,
                "limit_param": size,
                "page_size": count,
                "total_path": total_path,
            }
            following = {**params, position: count, size: count}
        else:
            paginate = {
                "type": "page",
                "page_param": position,
                "size_param": size,
                "page_size": count,
            }
            if total_path:
                paginate["total_path"] = total_path
            if pages_path:
                paginate["total_pages_path"] = pages_path
            following = {**params, position: 2, size: count}
        reason = f"{where}, more than the {count} on page 1; " if total is not None else ""
        found.append(
            _Candidate(
                paginate,
                f"{reason}`{position}`/`{size}` led to page 2",
                base,
                following,
                confidence="sure" if total is not None else "likely",
                moved=f"`{position}` moved the read on",
                by_position=True,
            )
        )
    return found


async def detect_paging(
    prober: Prober,
    first: Answer,
    records: list[dict[str, Any]],
    *,
    records_path: str | None,
    format: str,
    key: str | None,
    params: dict[str, Any],
) -> Paging:
    """Decide the pagination of the list whose page 1 is `first`; reads page 2 to verify.

    A list that fits on page 1 today (a total no larger, `has_more: false`, a null next
    cursor, pages past it empty or the same) is asked again for pages of one record
    (`_on_smaller_pages`): the pagination shows there, and is verified the same way, so the
    file written still reads the whole list once it outgrows one page.
    """
    count = len(records)
    total, total_path, _ = announced_total(first)
    candidates = _signalled(first, records, key, params)
    signalled = bool(candidates)
    if total_path:
        for candidate in candidates:
            candidate.paginate.setdefault("total_path", total_path)
    whole: Paging | None = None
    failure: DetectionError | None = None
    end = _end_marker(first)
    if not candidates:
        if total is not None and total <= count:
            where = f"`{total_path}`" if total_path else "X-Total-Count"
            paginate: dict[str, Any] = {"type": "single"}
            if total_path:
                paginate["total_path"] = total_path
            whole = Paging(
                Finding(paginate, "sure", f"{where} says {total}: all on page 1"), [records]
            )
        elif end is not None and total is None:
            evidence = f"{end} on page 1: all on page 1"
            whole = Paging(Finding({"type": "single"}, "likely", evidence), [records])
        elif total is None and count not in _SIZES:
            evidence = (
                f"no next link, cursor or total, and {count} records (not a usual page "
                "size): taken as the whole list"
            )
            whole = Paging(Finding({"type": "single"}, "likely", evidence), [records])
        else:
            candidates = _position_candidates(first, count, params, format == "jsonapi")
    if candidates:
        tried = await _verify(prober, candidates, records, records_path, format, key, params)
        if tried.found is not None:
            return tried.found
        if tried.empty is not None:
            # `page=2` came back empty: the API pages by it, and the list ends on page 1.
            empty, label = tried.empty
            evidence = f"page 2 by {label} came back empty: the list fits on page 1 today"
            whole = Paging(Finding(empty.paginate, "likely", evidence), [records])
        elif tried.repeats:
            failure = DetectionError(
                f"the API's pages repeat: page 2 ({', '.join(tried.repeats)}) returned "
                "records of page 1 again, so it ignores the paging parameters tried; "
                "interlink would read the same records forever. Find the API's paging "
                "parameters in its docs and set `paginate:` by hand"
            )
        elif signalled or (total is not None and total > count):
            failure = DetectionError(
                f"page 1 has {count} records"
                + (f" of {total}" if total is not None else "")
                + f", but no way to page 2 worked (tried: {', '.join(tried.labels) or 'nothing'}); "
                "set `paginate:` by hand (docs/connectors.md)"
            )
        else:
            evidence = (
                f"{count} records and no total, next link or cursor; the API ignored "
                f"{', '.join(tried.labels)}: taken as the whole list"
            )
            whole = Paging(Finding({"type": "single"}, "guess", evidence), [records])
    if count > 1:
        proved = await _on_smaller_pages(
            prober, first, records, records_path=records_path, format=format, key=key, params=params
        )
        if proved is not None:
            return proved
    if failure is not None:
        raise failure
    assert whole is not None
    return whole


def _signalled(
    first: Answer, records: list[dict[str, Any]], key: str | None, params: dict[str, Any]
) -> list[_Candidate]:
    """The candidates page 1 points to itself: a next link or URL, a cursor, `has_more`."""
    candidates = [
        found for found in (_link_candidate(first), _next_url_candidate(first)) if found is not None
    ]
    candidates += _cursor_candidates(first, params)
    more = _has_more_candidate(first, records, key, params)
    if more is not None:
        candidates.append(more)
    return candidates


@dataclass(slots=True)
class _Tried:
    found: Paging | None = None
    empty: tuple[_Candidate, str] | None = None
    """A candidate by position whose page 2 came back empty, and what it sent."""
    repeats: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


async def _verify(
    prober: Prober,
    candidates: list[_Candidate],
    records: list[dict[str, Any]],
    records_path: str | None,
    format: str,
    key: str | None,
    params: dict[str, Any],
) -> _Tried:
    """Read page 2 by each candidate in turn; the first that brings new records wins."""
    seen = {_key_of(record, key) for record in records}
    tried = _Tried()
    for candidate in candidates:
        if prober.left <= 2 and tried.labels:
            break
        second = await prober.get(candidate.url, candidate.params)
        label = " ".join(f"{k}={v}" for k, v in candidate.params.items() if k not in params)
        tried.labels.append(label or candidate.url)
        if second.status >= 400 or second.body is NOT_JSON:
            continue
        page2 = select_records(second.body, records_path, format)
        if not page2:
            if candidate.by_position and tried.empty is None:
                tried.empty = (candidate, label)
            continue
        keys = [_key_of(record, key) for record in page2]
        if any(k in seen for k in keys):
            tried.repeats.append(label or "the next link")
            continue
        tried.found = Paging(
            Finding(
                candidate.paginate,
                candidate.confidence,
                f"{candidate.evidence} ({_records(len(page2))} new; {candidate.moved})",
            ),
            [records, page2],
        )
        return tried
    return tried


_SIZE_NAMES = (
    "limit",
    "per_page",
    "page_size",
    "pageSize",
    "size",
    "_limit",
    "page[size]",
    "page[limit]",
)

_LARGER = 100
"""The page size written for a list proved on pages of one: most APIs take 100."""


def _end_marker(first: Answer) -> str | None:
    """What on page 1 says the list ends there: `has_more: false`, a null next cursor or
    next URL, `links` without `next`, a `Link` header without rel="next"."""
    body = first.body
    if isinstance(body, dict):
        for flag in _HAS_MORE:
            if body.get(flag) is False:
                return f"`{flag}: false`"
        paths = [f"{parent}{name}" for parent in _CURSOR_PARENTS for name in _CURSORS]
        for path in [*paths, *_NEXT_PATHS]:
            parent, _, name = path.rpartition(".")
            holder = _at(body, parent) if parent else body
            if isinstance(holder, dict) and name in holder and holder[name] is None:
                return f"`{path}: null`"
        links = body.get("links")
        if isinstance(links, dict) and links and "next" not in links:
            return "`links` without `next`"
    links = parse_link_header(first.headers.get("link"))
    if links and "next" not in links:
        return 'a `Link` header without rel="next"'
    return None


def _size_names(first: Answer, params: dict[str, Any], format: str) -> list[str]:
    """Page-size parameters to try, best first: the URL's own, what the format uses, what
    the body echoes, then the common spellings."""
    body = first.body if isinstance(first.body, dict) else {}
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    names = [name for name in params if name in _SIZE_NAMES]
    if format == "jsonapi":
        names += ["page[size]", "page[limit]"]
    if isinstance(first.body, list) and "x-total-count" in first.headers:
        names.append("_limit")
    names += [name for name in _SIZE_NAMES if name in body or name in (meta or {})]
    names += ["limit", "per_page"]
    return list(dict.fromkeys(names))[:3]


async def _on_smaller_pages(
    prober: Prober,
    first: Answer,
    records: list[dict[str, Any]],
    *,
    records_path: str | None,
    format: str,
    key: str | None,
    params: dict[str, Any],
) -> Paging | None:
    """Ask for page 1 again with a page size of one; where the API honours it, decide and
    verify the pagination on those pages, and write it with a page size of `_LARGER`."""
    count = len(records)
    for size in _size_names(first, params, format):
        if prober.left <= 3:
            return None
        asked = {**params, size: 1}
        small = await prober.get(first.url.split("?")[0], asked)
        if small.status >= 400 or small.body is NOT_JSON:
            continue
        few = select_records(small.body, records_path, format)
        if not few or len(few) >= count:
            continue  # the API ignores this parameter
        candidates = _signalled(small, few, key, asked)
        if not candidates:
            position = _position_candidates(small, len(few), asked, format == "jsonapi")
            # The honoured size parameter first.
            candidates = sorted(position, key=lambda c: size not in c.params)
        tried = await _verify(prober, candidates, few, records_path, format, key, asked)
        if tried.found is None:
            return None
        finding = tried.found.finding
        paginate = _sized(dict(finding.value), size, max(count, _LARGER))
        evidence = (
            f"page 1 held all {count} records; asked for pages of one (`{size}=1`): "
            f"{finding.evidence}"
        )
        return Paging(Finding(paginate, finding.confidence, evidence), [records])
    return None


def _sized(paginate: dict[str, Any], size_param: str, size: int) -> dict[str, Any]:
    """`paginate` with pages of `size` records, asked for by `size_param`."""
    paginate["limit_param" if paginate["type"] == "offset" else "size_param"] = size_param
    paginate["page_size"] = size
    return paginate


def _records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"


def looks_like_page_param(name: str) -> bool:
    """Whether a query parameter of the given URL is one the paginator sets."""
    return name in PAGING_PARAMS or bool(re.fullmatch(r"page\[\w+\]", name))
