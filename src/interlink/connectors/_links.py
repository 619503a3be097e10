"""Parse the HTTP `Link` header (RFC 8288, formerly RFC 5988)."""

from __future__ import annotations

__all__ = ["parse_link_header"]


def _params(text: str) -> list[tuple[str, str]]:
    """`; rel="next"; title="a;b"` -> [("rel", "next"), ("title", "a;b")]."""
    params: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        semicolon = text.find(";", i)
        if semicolon < 0:
            break
        i = semicolon + 1
        end = i
        while end < n and text[end] not in "=;":
            end += 1
        name = text[i:end].strip().lower()
        value = ""
        if end < n and text[end] == "=":
            i = end + 1
            while i < n and text[i] == " ":
                i += 1
            if i < n and text[i] == '"':
                close = i + 1
                while close < n and text[close] != '"':
                    close += 2 if text[close] == "\\" else 1
                value = text[i + 1 : close].replace('\\"', '"')
                i = close + 1
            else:
                end = i
                while end < n and text[end] != ";":
                    end += 1
                value = text[i:end].strip()
                i = end
        else:
            i = end
        if name:
            params.append((name, value))
    return params


def _split_links(value: str) -> list[tuple[str, str]]:
    """Split a header into (target, parameters) pairs, respecting <...> and quotes."""
    links: list[tuple[str, str]] = []
    i, n = 0, len(value)
    while i < n:
        start = value.find("<", i)
        if start < 0:
            break
        close = value.find(">", start + 1)
        if close < 0:
            break
        target = value[start + 1 : close].strip()
        j, quoted = close + 1, False
        while j < n and (quoted or value[j] != ","):
            if value[j] == '"':
                quoted = not quoted
            elif value[j] == "\\" and quoted:
                j += 1
            j += 1
        links.append((target, value[close + 1 : j]))
        i = j + 1
    return links


def parse_link_header(value: str | None) -> dict[str, str]:
    """Map each relation type to its target URL: `{"next": "...", "last": "..."}`.

    A link may name several relations (`rel="next last"`); the first link for a relation
    wins. Relation names are case-insensitive and returned in lower case. Targets are
    returned as written; resolve relative ones against the request URL. Malformed parts are
    skipped, never raised.
    """
    links: dict[str, str] = {}
    if not value:
        return links
    for target, params in _split_links(value):
        for name, rels in _params(params):
            if name == "rel":
                for rel in rels.split():
                    links.setdefault(rel.lower(), target)
    return links
