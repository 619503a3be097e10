from __future__ import annotations

import datetime

import pytest
from hypothesis import given, strategies as st

from interlink.errors import ConfigError
from interlink.sync._mapping import FieldMapping, MappingError, compile_mapping

HERE = "tests.sync.test_mapping"
EXPECTED = "expected a path, a template, a constant or one of {path, template, value, call}"

CUSTOMER = {
    "id": 7,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "address": {"city": "London", "country": None},
    "tags": ["vip", "beta"],
    "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 3}],
    "active": True,
    "some-field": "dash",
}


# Helpers that the specs below name as "tests.sync.test_mapping:<name>".
def full_name(record):
    return f"{record['first_name']} {record['last_name']}"


def shout(value):
    return None if value is None else value.upper()


def broken(record):
    raise ValueError("no name")


def silent_failure(record):
    raise KeyError


NOT_CALLABLE = 42


class Tools:
    @staticmethod
    def count(value):
        return len(value)


def one(spec, record=CUSTOMER):
    """The value mapped into target field `x` by `spec`."""
    return compile_mapping({"x": spec}, where="p.fields")(record)["x"]


@pytest.mark.parametrize("spec", ["all", None])
def test_all_is_a_shallow_copy(spec):
    mapping = compile_mapping(spec, where="p.fields")
    assert mapping.copies_all and mapping.fields is None
    out = mapping(CUSTOMER)
    assert out == CUSTOMER and out is not CUSTOMER
    assert out["address"] is CUSTOMER["address"]
    assert repr(mapping) == "FieldMapping(fields='all')"


def test_fields_lists_the_targets_in_order():
    mapping = compile_mapping({"b": "id", "a": "first_name"}, where="p.fields")
    assert isinstance(mapping, FieldMapping)
    assert not mapping.copies_all
    assert mapping.fields == ["b", "a"]
    assert list(mapping(CUSTOMER)) == ["b", "a"]
    assert repr(mapping) == "FieldMapping(fields=['b', 'a'])"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("id", 7),
        ("address.city", "London"),
        ("tags.0", "vip"),
        ("tags.-1", "beta"),
        ("some-field", "dash"),
        ("items[?sku=='b'].qty | [0]", 3),
        ("length(tags)", 2),
        ("items[].sku", ["a", "b"]),
        # missing paths and nulls are None, not errors
        ("nope", None),
        ("address.zip", None),
        ("address.country", None),
        ("tags.5", None),
        ("items[?sku=='z'].qty | [0]", None),
    ],
)
def test_paths(path, expected):
    assert one(path) == expected


def test_a_jmespath_function_given_the_wrong_type_is_a_mapping_error():
    with pytest.raises(MappingError) as caught:
        one("length(id)")
    assert caught.value.field == "x"
    assert str(caught.value).startswith("field 'x': JMESPathTypeError: In function length()")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{first_name} {last_name}", "Ada Lovelace"),
        ("{address.city}, {tags.0}", "London, vip"),
        ("{ first_name }", "Ada"),
        ("{items[1].sku}", "b"),
        ("{{literal}} {id}", "{literal} 7"),
        ("}}{{", "}{"),
        ("{{{id}}}", "{7}"),
        ("no placeholder {{}}", "no placeholder {}"),
        # missing and null render as "", booleans and containers as JSON
        ("[{nope}|{address.country}]", "[|]"),
        ("{active}", "true"),
        ("{tags}", '["vip","beta"]'),
        ("{address}", '{"city":"London","country":null}'),
    ],
)
def test_templates(template, expected):
    assert one(template) == expected
    assert one({"template": template}) == expected


def test_template_numbers():
    record = {"n": 3, "f": 1.5, "neg": -2, "off": False}
    assert one("{n}/{f}/{neg}/{off}", record) == "3/1.5/-2/false"


@pytest.mark.parametrize("constant", [3, 2.5, True, False, None])
def test_scalars_are_constants(constant):
    assert one(constant) == constant


@pytest.mark.parametrize("value", ["address.city", "{first_name}", 3, None, {"a": 1}, [1, 2]])
def test_value_is_any_constant(value):
    assert one({"value": value}) == value


def test_a_mutable_constant_is_copied_for_each_record():
    mapping = compile_mapping({"x": {"value": {"tags": []}}}, where="p.fields")
    first, second = mapping({}), mapping({})
    first["x"]["tags"].append(1)
    assert second["x"] == {"tags": []}


def test_path_with_a_default():
    spec = {"path": "address.country", "default": "GB"}
    assert one(spec) == "GB"  # null
    assert one({"path": "address.zip", "default": "-"}) == "-"  # missing
    assert one({"path": "address.city", "default": "-"}) == "London"
    assert one({"path": "active", "default": True, "required": False}) is True


def test_a_mutable_default_is_copied_for_each_record():
    mapping = compile_mapping({"x": {"path": "nope", "default": []}}, where="p.fields")
    first, second = mapping({}), mapping({})
    first["x"].append(1)
    assert second["x"] == []


def test_required_path():
    assert one({"path": "address.city", "required": True}) == "London"
    for path in ["address.country", "address.zip", "items[?sku=='z'] | [0]"]:
        with pytest.raises(MappingError) as caught:
            one({"path": path, "required": True})
        assert str(caught.value) == f"field 'x': required path {path!r} is missing or null"
        assert caught.value.field == "x"
        assert caught.value.error is None


def test_calls():
    assert one({"call": f"{HERE}:full_name"}) == "Ada Lovelace"
    assert one({"path": "address.city", "call": f"{HERE}:shout"}) == "LONDON"
    assert one({"path": "nope", "call": f"{HERE}:shout"}) is None
    assert one({"path": "nope", "default": "x", "call": f"{HERE}:shout"}) == "X"
    assert one({"path": "tags", "call": f"{HERE}:Tools.count"}) == 2


def test_a_call_that_raises_is_a_mapping_error():
    mapping = compile_mapping(
        {"id": "id", "full_name": {"call": f"{HERE}:broken"}}, where="p.fields"
    )
    with pytest.raises(MappingError) as caught:
        mapping(CUSTOMER)
    error = caught.value
    assert str(error) == "field 'full_name': ValueError: no name"
    assert error.field == "full_name"
    assert isinstance(error.error, ValueError)
    assert error.__cause__ is error.error
    silent = compile_mapping({"k": {"call": f"{HERE}:silent_failure"}}, where="p.fields")
    with pytest.raises(MappingError, match=r"^field 'k': KeyError$"):
        silent(CUSTOMER)


@pytest.mark.parametrize(
    ("spec", "key", "message"),
    [
        (
            "everything",
            "p.fields",
            "expected 'all' or a mapping of target field names to field specs; got 'everything'",
        ),
        (
            ["id"],
            "p.fields",
            "expected 'all' or a mapping of target field names to field specs; got a list",
        ),
        ({}, "p.fields", "expected at least one field, or 'all'; got an empty mapping"),
        (
            {1: "id"},
            "p.fields.1",
            "a target field name must be a non-empty string; got an integer",
        ),
        ({"x": ["id"]}, "p.fields.x", f"{EXPECTED}; got a list"),
        ({"x": datetime.date(2024, 1, 1)}, "p.fields.x", f"{EXPECTED}; got a date"),
        ({"x": {"default": 1}}, "p.fields.x", f"{EXPECTED}; got keys default"),
        ({"x": {}}, "p.fields.x", f"{EXPECTED}; got an empty mapping"),
        (
            {"x": {"path": "a", "fromat": 1}},
            "p.fields.x",
            "unknown key 'fromat'; the keys are path, template, value, call, default, required",
        ),
        (
            {"x": {"path": "a", "template": "{b}"}},
            "p.fields.x",
            "got both 'path' and 'template'; give one of path, template, value or call "
            "(only call may go with path)",
        ),
        (
            {"x": {"value": 1, "call": f"{HERE}:shout"}},
            "p.fields.x",
            "got both 'value' and 'call'; give one of path, template, value or call "
            "(only call may go with path)",
        ),
        (
            {"x": {"template": "{a}", "default": 1}},
            "p.fields.x",
            "'default' goes only with 'path'",
        ),
        (
            {"x": {"call": f"{HERE}:shout", "required": True}},
            "p.fields.x",
            "'required' goes only with 'path'",
        ),
        (
            {"x": {"path": "a", "required": "yes"}},
            "p.fields.x",
            "'required' must be true or false; got 'yes'",
        ),
        (
            {"x": {"path": "a", "required": True, "default": 1}},
            "p.fields.x",
            "'default' and 'required: true' contradict each other; keep one",
        ),
        ({"x": {"template": 3}}, "p.fields.x", "expected a template string; got an integer"),
        (
            {"x": ""},
            "p.fields.x",
            "expected a path (dotted or JMESPath); got an empty string",
        ),
        (
            {"x": {"path": 3}},
            "p.fields.x",
            "expected a path (dotted or JMESPath); got an integer",
        ),
        (
            {"x": "a b"},
            "p.fields.x",
            "invalid path 'a b': Unexpected token: b: Parse error at column 2, "
            'token "b" (UNQUOTED_IDENTIFIER)',
        ),
        (
            {"x": "{a b}"},
            "p.fields.x",
            "invalid path 'a b': Unexpected token: b: Parse error at column 2, "
            'token "b" (UNQUOTED_IDENTIFIER)',
        ),
        (
            {"x": "{a"},
            "p.fields.x",
            "unclosed '{' at position 0 in template '{a'; write '{{' for a literal brace",
        ),
        (
            {"x": "x {a {b}"},
            "p.fields.x",
            "unclosed '{' at position 2 in template 'x {a {b}'; write '{{' for a literal brace",
        ),
        (
            {"x": "a}"},
            "p.fields.x",
            "single '}' at position 1 in template 'a}'; write '}}' for a literal brace",
        ),
        (
            {"x": "{ }"},
            "p.fields.x",
            "empty placeholder at position 0 in template '{ }'; "
            "expected a path such as {first_name}",
        ),
        (
            {"x": {"template": "{price:.2f}"}},
            "p.fields.x",
            "format specs are not supported: '{price:.2f}' in template '{price:.2f}'; "
            "a placeholder is a path only (format the value with call:)",
        ),
        (
            {"x": {"call": "nodots"}},
            "p.fields.x",
            "expected 'package.module:function' for call; got 'nodots'",
        ),
        (
            {"x": {"call": "a:b:c"}},
            "p.fields.x",
            "expected 'package.module:function' for call; got 'a:b:c'",
        ),
        (
            {"x": {"call": ":f"}},
            "p.fields.x",
            "expected 'package.module:function' for call; got ':f'",
        ),
        (
            {"x": {"call": 3}},
            "p.fields.x",
            "expected 'package.module:function' for call; got an integer",
        ),
        (
            {"x": {"call": "no_such_module_xyz:f"}},
            "p.fields.x",
            "cannot import 'no_such_module_xyz' for call 'no_such_module_xyz:f': "
            "ModuleNotFoundError: No module named 'no_such_module_xyz'",
        ),
        (
            {"x": {"call": f"{HERE}:nope"}},
            "p.fields.x",
            f"module {HERE!r} has no attribute 'nope' (call '{HERE}:nope')",
        ),
        (
            {"x": {"call": f"{HERE}:NOT_CALLABLE"}},
            "p.fields.x",
            f"call '{HERE}:NOT_CALLABLE' is not callable; got an integer",
        ),
    ],
)
def test_config_errors(spec, key, message):
    with pytest.raises(ConfigError) as caught:
        compile_mapping(spec, where="p.fields")
    assert caught.value.key == key
    assert caught.value.message == message
    assert str(caught.value) == f"{key}: {message}"


def test_errors_are_found_at_compile_time_not_per_record():
    with pytest.raises(ConfigError):
        compile_mapping({"ok": "id", "bad": {"call": "no_such_module_xyz:f"}}, where="p")


def _escape(text):
    return text.replace("{", "{{").replace("}", "}}")


@given(st.text())
def test_literal_text_round_trips(text):
    mapping = compile_mapping({"x": {"template": _escape(text)}}, where="p.fields")
    assert mapping({})["x"] == text


@given(st.text(), st.text(), st.text() | st.none())
def test_a_placeholder_between_literal_text(prefix, suffix, value):
    template = _escape(prefix) + "{name}" + _escape(suffix)
    mapping = compile_mapping({"x": {"template": template}}, where="p.fields")
    assert mapping({"name": value})["x"] == prefix + (value or "") + suffix
