from __future__ import annotations

from hypothesis import given, strategies as st

from interlink.connectors import MISSING, compile_selector, parse_link_header


def test_dotted_paths():
    body = {"data": {"customers": [{"id": 1}]}, "response": {"result": {"items": [1, 2]}}}
    assert compile_selector("data.customers")(body) == [{"id": 1}]
    assert compile_selector("response.result.items")(body) == [1, 2]
    assert compile_selector("response.result.items.1")(body) == 2
    assert compile_selector("response.result.items.-1")(body) == 2
    assert compile_selector("data.nope")(body) is MISSING
    assert compile_selector("data.customers.5")(body) is MISSING
    assert compile_selector("data")([1, 2]) is MISSING


def test_null_is_not_missing():
    assert compile_selector("next")({"next": None}) is None


def test_jmespath_expressions():
    body = {"data": {"products": {"edges": [{"node": {"id": 1}}, {"node": {"id": 2}}]}}}
    assert compile_selector("data.products.edges[].node")(body) == [{"id": 1}, {"id": 2}]
    assert compile_selector("data.products.edges[?node.id > `1`].node.id")(body) == [2]
    assert compile_selector("data.nothing[]")(body) is MISSING


def test_link_header_forms():
    github = (
        '<https://api.github.com/repositories/1/issues?page=2>; rel="next", '
        '<https://api.github.com/repositories/1/issues?page=30>; rel="last"'
    )
    assert parse_link_header(github) == {
        "next": "https://api.github.com/repositories/1/issues?page=2",
        "last": "https://api.github.com/repositories/1/issues?page=30",
    }
    assert parse_link_header('<http://a/?x=1,2>; rel="next last"; title="a;b, c"') == {
        "next": "http://a/?x=1,2",
        "last": "http://a/?x=1,2",
    }
    assert parse_link_header("</p/2>; REL=Next") == {"next": "/p/2"}
    assert parse_link_header('<a>; rel="next", <b>; rel="next"') == {"next": "a"}
    for junk in ["", "garbage", "<unterminated", "<a>", "<a>; rel", None]:
        assert parse_link_header(junk) == {}


url_chars = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters='<>"'),
    min_size=1,
    max_size=40,
)


RELS = st.sampled_from(["next", "prev", "last", "first"])


@given(st.lists(st.tuples(url_chars, RELS), max_size=5))
def test_link_header_round_trip(links):
    header = ", ".join(f'<{url}>; rel="{rel}"; title="x, y; z"' for url, rel in links)
    expected: dict[str, str] = {}
    for url, rel in links:
        expected.setdefault(rel, url)
    assert parse_link_header(header) == expected


@given(st.text())
def test_link_header_never_raises(value):
    assert isinstance(parse_link_header(value), dict)


def test_peek_string_finds_a_unique_key_without_parsing():
    from interlink.connectors._selectors import peek_string

    raw = b'{"data": [{"id": 1}], "next_cursor" : "ab\\"c\\u00e9"}'
    assert peek_string(raw, "next_cursor") == 'ab"c\u00e9'
    assert peek_string(b'{"meta": {"next": null}}', "meta.next") is None
    assert peek_string(b'{"next": 5}', "next") is MISSING
    assert peek_string(b'{"next": "a", "x": {"next": "b"}}', "next") is MISSING
    assert peek_string(b'{"other": 1}', "next") is MISSING
    assert peek_string(b'{"next": "unterminated', "next") is MISSING
    assert peek_string(b"", "next") is MISSING
    assert peek_string(b'{"a": "x \\"next\\": \\"y\\""}', "next") is MISSING


@given(
    st.text(),
    st.dictionaries(st.sampled_from(["a", "b", "data"]), st.integers(-(2**63), 2**63 - 1)),
)
def test_peek_string_agrees_with_the_parser(value, others):
    import orjson

    from interlink.connectors._selectors import peek_string

    raw = orjson.dumps({**others, "next_cursor": value})
    assert peek_string(raw, "next_cursor") == value
