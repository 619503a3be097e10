"""Find the records (and other values) inside a response body.

A selector is a dotted path (`data.customers`, `response.result.items`, `items.0`) or,
when it needs more, a JMESPath expression (`data.products.edges[].node`). Dotted paths are
resolved by plain dict lookups, which is several times faster than JMESPath on the hot
path of every page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "MISSING",
    "Selector",
    "compile_selector",
    "is_one_record",
    "null_on_the_way",
    "peek_string",
]

_DOTTED = re.compile(r"^[A-Za-z_$@][\w$@-]*(\.[\w$@-]+)*$")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()
"""What a selector returns when its path is not in the body (distinct from a JSON null)."""

Selector = Callable[[Any], Any]


def _dotted(parts: tuple[str, ...]) -> Selector:
    def select(body: Any) -> Any:
        node = body
        for part in parts:
            if isinstance(node, dict):
                if part not in node:
                    return MISSING
                node = node[part]
            elif isinstance(node, list) and part.lstrip("-").isdigit():
                index = int(part)
                if not -len(node) <= index < len(node):
                    return MISSING
                node = node[index]
            else:
                return MISSING
        return node

    return select


def null_on_the_way(body: Any, path: str) -> bool:
    """Whether a dotted `path` meets a null inside the body before its end
    (`{"products": null}` for `products.Product`: what zeep makes of an empty
    `<products/>`), where a selector says MISSING. A null body is not one."""
    if not _DOTTED.match(path) or not isinstance(body, dict):
        return False
    node = body
    for part in path.split("."):
        if node is None:
            return True
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return False


def compile_selector(path: str) -> Selector:
    """A function from a body to the value at `path` (MISSING where there is none)."""
    if _DOTTED.match(path):
        return _dotted(tuple(path.split(".")))
    import jmespath  # only for what a dotted path cannot say (~15 ms of imports)

    expression = jmespath.compile(path)

    def select(body: Any) -> Any:
        value = expression.search(body)
        return MISSING if value is None else value

    return select


# Keys that say a body is a page of a list (lower-cased, letters and digits only).
_PAGING_KEYS = frozenset(
    {
        "hasmore",
        "next",
        "nextpage",
        "nextcursor",
        "nextpagetoken",
        "nexttoken",
        "nextlink",
        "nexturl",
        "cursor",
        "page",
        "perpage",
        "pagesize",
        "pagination",
        "paging",
    }
)


def is_one_record(body: Any, primary_key: str) -> bool:
    """Whether a body is one record itself (`GET /products/123`), not an envelope of records.

    It is when it is a JSON object holding the record's primary key and none of the marks
    of an envelope: a `data` key (the envelope a body without `records:` is read from), a
    `jsonrpc` key (a JSON-RPC answer: its `id` is the call's, its records under `result`,
    or an `error`), or a list beside a paging key (`{"id": "list_1", "results": [...],
    "has_more": true}`). An envelope around a list without an id of its own
    (`{"items": [...], "total": 3}`) is left to the usual rules, as is an order with its
    line items (`{"id": 9, "items": [...]}`), which is one record.

    ```python
    is_one_record({"id": 123, "name": "Lamp"}, "id")                        # True
    is_one_record({"data": [{"id": 1}]}, "id")                              # False
    is_one_record({"jsonrpc": "2.0", "id": 1, "result": [{"id": 5}]}, "id") # False
    is_one_record({"id": "l", "items": [], "next_cursor": "x"}, "id")       # False
    ```
    """
    if not isinstance(body, dict) or "data" in body or "jsonrpc" in body:
        return False
    if any(isinstance(value, list) for value in body.values()) and any(
        isinstance(name, str) and re.sub(r"[^a-z0-9]", "", name.lower()) in _PAGING_KEYS
        for name in body
    ):
        return False
    key = body.get(primary_key, MISSING)
    if key is MISSING and "." in primary_key:
        key = compile_selector(primary_key)(body)
    return key is not MISSING and key is not None and not isinstance(key, dict | list)


_WHITESPACE = b" \t\r\n"


def peek_string(raw: bytes, path: str) -> Any:
    """A guess at the string (or null) under `path`'s last key, found without parsing.

    Scans the raw JSON for `"key"`; when the key occurs exactly once and holds a string or
    null, returns it decoded, else MISSING. It is only a guess (the key could sit anywhere),
    so use it to start work early and check it against the parsed body.
    """
    key = path.rsplit(".", 1)[-1]
    if not _DOTTED.match(path) or not raw:
        return MISSING
    needle = b'"' + key.encode() + b'"'
    at = raw.find(needle)
    if at < 0 or raw.find(needle, at + len(needle)) >= 0:
        return MISSING
    i, n = at + len(needle), len(raw)
    while i < n and raw[i] in _WHITESPACE:
        i += 1
    if i >= n or raw[i] != 0x3A:  # ':'
        return MISSING
    i += 1
    while i < n and raw[i] in _WHITESPACE:
        i += 1
    if raw.startswith(b"null", i):
        return None
    if i >= n or raw[i] != 0x22:  # '"'
        return MISSING
    end = i + 1
    while end < n:
        if raw[end] == 0x5C:  # backslash: skip the escaped character
            end += 2
            continue
        if raw[end] == 0x22:
            break
        end += 1
    if end >= n:
        return MISSING
    import orjson

    try:
        return orjson.loads(raw[i : end + 1])
    except orjson.JSONDecodeError:
        return MISSING
