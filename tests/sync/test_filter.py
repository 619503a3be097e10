from __future__ import annotations

import operator

import pytest
from hypothesis import given, strategies as st

from interlink.errors import ConfigError
from interlink.sync._filter import FilterError, compile_filter

HERE = "tests.sync.test_filter"
ONLY = (
    "only fields, literals, comparisons, and/or/not and the functions "
    "len, lower, upper, startswith, endswith, contains, exists, field are allowed"
)

RECORD = {
    "status": "active",
    "name": "Ada Lovelace",
    "n": 5,
    "price": 9.5,
    "address": {"country": "DE", "city": None},
    "tags": ["vip", "beta"],
    "empty": [],
    "meta": {"source": "web"},
    "some-field": "dash",
    "class": "gold",
    "items": [{"sku": "a"}, {"sku": "b"}],
    "deleted": False,
    "nothing": None,
}


# Helpers that the specs below name as "tests.sync.test_filter:<name>".
def is_vip(record):
    return "vip" in record.get("tags", [])


def count_tags(record):
    return len(record.get("tags", []))


def broken(record):
    raise ValueError("bad record")


def check(expression, record=RECORD):
    return compile_filter(expression, where="p.filter")(record)


def test_none_takes_everything():
    keep = compile_filter(None, where="p.filter")
    assert keep({}) is True and keep(RECORD) is True


@pytest.mark.parametrize(
    "expression",
    [
        "status == 'active'",
        'status == "active"',
        "status != 'gone'",
        "n == 5 and n >= 5 and n <= 5 and n > 4 and n < 6",
        "price > 9",
        "address.country == 'DE'",
        "address.city is None",
        "address.zip is None",
        "nope is None",
        "nope.deeper is None",
        "deleted is False",
        "deleted is not True",
        "nothing is None and status is not None",
        "1 <= n < 10",
        "0 < n <= 5 != 4",
        "status in ['active', 'trial']",
        "status in ('active', 'trial')",
        "status not in ['gone']",
        "'vip' in tags",
        "'gone' not in tags",
        "'Love' in name",
        "'source' in meta",
        "n in [1, 5.0]",
        "tags == ['vip', 'beta']",
        "tags == ('vip', 'beta')",
        "n > -1 and price < +10",
        "not status == 'gone'",
        "status == 'gone' or n == 5",
        "(status == 'gone' or n == 5) and not deleted",
        "not (status == 'gone' or n == 6)",
        "field('some-field') == 'dash'",
        'field("class") == "gold"',
        "field('tags.0') == 'vip'",
        "field('tags.-1') == 'beta'",
        "field(\"items[?sku=='b'] | [0].sku\") == 'b'",
        "field('address.country') == address.country",
        "len(tags) == 2 and len(name) == 12 and len(meta) == 1",
        "len(n) is None and len(nope) is None",
        "lower(name) == 'ada lovelace' and upper(status) == 'ACTIVE'",
        "lower(n) is None",
        "startswith(name, 'Ada') and endswith(name, 'lace')",
        "not startswith(n, 'A') and not endswith(name, 3)",
        "contains(name, 'Love') and contains(tags, 'vip') and contains(meta, 'source')",
        "not contains(n, 5) and not contains(name, 5) and not contains(meta, [1])",
        "exists(status) and exists(address.country) and exists(field('some-field'))",
        "not exists(nothing) and not exists(address.city) and not exists(nope)",
        "lower(upper(status)) == status",
        "len(field('items')) == 2",
        "tags",
        "name",
        "not empty",
        "not nope",
        "True",
        "status and n",
        "0 or n",
        "deleted or empty or n",
        "status == 'active' and n == 5 and price > 9 and not deleted",
        "status == 'x' or n == 0 or price > 9",
        "status == 'active'\n  and address.country == 'DE'",
    ],
)
def test_true_for_the_record(expression):
    assert check(expression) is True


@pytest.mark.parametrize(
    "expression",
    [
        "status == 'gone'",
        "n != 5",
        "nope == 1",
        "nope",
        "empty",
        "deleted",
        "nothing",
        "False",
        "None",
        "0",
        "len(empty)",
        "status in ['gone', 'trial']",
        "n < 5 < 10",
        "status and deleted",
        "empty and n",
        "deleted or empty or nope",
        "exists(nope.deeper)",
        # comparisons of incompatible values are false, never errors
        "nothing < 3",
        "nope >= 0",
        "status < 1",
        "tags > 'a'",
        "meta <= meta",
        "'a' in n",
        "'a' not in n",
        "1 in nothing",
        "status in name",
        "[1] in meta",
    ],
)
def test_false_for_the_record(expression):
    assert check(expression) is False


def test_not_of_an_incompatible_comparison_is_true():
    assert check("not (nothing < 3)") is True


def test_unhashable_values_and_literal_lists():
    record = {"v": [1], "d": {"a": 1}}
    assert check("v in [1, 2]", record) is False
    assert check("v not in [1, 2]", record) is True
    assert check("d in ['a']", record) is False
    assert check("v in [[1], 2]", record) is True


def test_the_filter_always_returns_a_bool():
    for expression in ["tags", "name", "len(tags)", "nope", "status or n", "field('n')"]:
        assert type(check(expression)) is bool


def test_records_without_the_fields():
    assert check("status == 'active'", {}) is False
    assert check("not exists(status) and len(tags) is None", {}) is True


def test_call_filters():
    keep = compile_filter({"call": f"{HERE}:is_vip"}, where="p.filter")
    assert keep(RECORD) is True
    assert keep({}) is False
    counting = compile_filter({"call": f"{HERE}:count_tags"}, where="p.filter")
    assert counting(RECORD) is True  # truthiness of 2
    assert counting({"tags": []}) is False


def test_a_call_that_raises_is_a_filter_error():
    keep = compile_filter({"call": f"{HERE}:broken"}, where="p.filter")
    with pytest.raises(FilterError) as caught:
        keep(RECORD)
    assert str(caught.value) == "filter: ValueError: bad record"
    assert isinstance(caught.value.error, ValueError)
    assert caught.value.__cause__ is caught.value.error


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        # the unsafe classics
        ("__import__('os')", f"unsupported expression '__import__(...)': {ONLY}"),
        ("().__class__", f"unsupported expression '().__class__': {ONLY}"),
        ("open('x')", f"unsupported expression 'open(...)': {ONLY}"),
        ("[x for x in y]", f"unsupported expression '[x for x in y]': {ONLY}"),
        ("lambda: 1", f"unsupported expression 'lambda: 1': {ONLY}"),
        (
            "a.__dict__",
            "unsupported expression 'a.__dict__': names starting with '__' are not allowed",
        ),
        (
            "__builtins__",
            "unsupported expression '__builtins__': names starting with '__' are not allowed",
        ),
        ("os.system('rm -rf /')", f"unsupported expression 'os.system(...)': {ONLY}"),
        ("status.lower()", f"unsupported expression 'status.lower(...)': {ONLY}"),
        ("'abc'.upper", f"unsupported expression \"'abc'.upper\": {ONLY}"),
        ("len(a).real", f"unsupported expression 'len(a).real': {ONLY}"),
        ("f'{a}'", f"unsupported expression \"f'{{a}}'\": {ONLY}"),
        ("(a := 1)", f"unsupported expression 'a := 1': {ONLY}"),
        ("a if b else c", f"unsupported expression 'a if b else c': {ONLY}"),
        ("{'a': 1}", f"unsupported expression \"{{'a': 1}}\": {ONLY}"),
        ("{1, 2}", f"unsupported expression '{{1, 2}}': {ONLY}"),
        ("b'x' == a", f"unsupported expression \"b'x'\": {ONLY}"),
        ("1j", f"unsupported expression '1j': {ONLY}"),
        (
            "tags[0] == 'vip'",
            f"unsupported expression 'tags[0]': {ONLY} (an item is a path: field(\"tags.0\"))",
        ),
        # arithmetic is not part of the language
        ("n + 1 > 2", f"unsupported expression 'n + 1': {ONLY}"),
        ("-n < 0", "unsupported expression '-n': arithmetic is not supported"),
        ("[a, 1]", "unsupported expression '[a, 1]': the items of a list must be literals"),
        ("n in [1, x]", "unsupported expression '[1, x]': the items of a list must be literals"),
        # the functions
        ("len(a, b)", "len() takes 1 argument; got 2 in 'len(a, b)'"),
        ("startswith(a)", "startswith() takes 2 arguments; got 1 in 'startswith(a)'"),
        (
            "len(x=1)",
            "unsupported expression 'len(...)': len() takes plain arguments, no keywords or *",
        ),
        (
            "len(*a)",
            "unsupported expression 'len(...)': len() takes plain arguments, no keywords or *",
        ),
        (
            "exists(1)",
            "exists() takes a field, such as exists(address.city) or "
            "exists(field(\"some-field\")); got 'exists(1)'",
        ),
        (
            "exists(lower(a))",
            "exists() takes a field, such as exists(address.city) or "
            "exists(field(\"some-field\")); got 'exists(lower(a))'",
        ),
        (
            "field(x) == 1",
            "field() takes a path in quotes, such as field(\"some-field\"); got 'field(x)'",
        ),
        (
            "field('') == 1",
            'field() takes a path in quotes, such as field("some-field"); got "field(\'\')"',
        ),
        (
            "field('a b') == 1",
            "invalid path 'a b': Unexpected token: b: Parse error at column 2, "
            'token "b" (UNQUOTED_IDENTIFIER)',
        ),
        # identity is for the singletons only
        ("x is 5", "'is' compares only with None, True or False; use == in 'x is 5'"),
        (
            "x is not 'a'",
            "'is not' compares only with None, True or False; use != in \"x is not 'a'\"",
        ),
        ("x is y", "'is' compares only with None, True or False; use == in 'x is y'"),
        (
            "status == null",
            "'null' would be a field; write None, True or False "
            "(or field('null') for a field of that name)",
        ),
        (
            "true",
            "'true' would be a field; write None, True or False "
            "(or field('true') for a field of that name)",
        ),
        # syntax errors name the position
        ("a b", "invalid expression 'a b': invalid syntax at column 3"),
        ("a = 1", "invalid expression 'a = 1': invalid syntax at column 3"),
        ("status ==", "invalid expression 'status ==': invalid syntax at the end"),
        ("(a", "invalid expression '(a': '(' was never closed at column 1"),
        (
            "tags.0 == 'vip'",
            "invalid expression \"tags.0 == 'vip'\": invalid syntax at column 5; "
            'an item of a list is written field("tags.0")',
        ),
        ("from == 1", "invalid expression 'from == 1': invalid syntax at column 1"),
        # what the spec itself may be
        ("", "expected an expression or {call: 'package.module:function'}; got an empty string"),
        (
            " \n ",
            "expected an expression or {call: 'package.module:function'}; got an empty string",
        ),
    ],
)
def test_expression_errors(expression, message):
    with pytest.raises(ConfigError) as caught:
        compile_filter(expression, where="p.filter")
    assert caught.value.key == "p.filter"
    assert caught.value.message == message
    assert str(caught.value) == f"p.filter: {message}"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (3, "expected an expression or {call: 'package.module:function'}; got an integer"),
        (True, "expected an expression or {call: 'package.module:function'}; got a boolean"),
        (["a"], "expected an expression or {call: 'package.module:function'}; got a list"),
        ({}, "expected an expression or {call: 'package.module:function'}; got an empty mapping"),
        (
            {"call": f"{HERE}:is_vip", "x": 1},
            "expected an expression or {call: 'package.module:function'}; got keys call, x",
        ),
        ({"call": "is_vip"}, "expected 'package.module:function' for call; got 'is_vip'"),
        (
            {"call": "no_such_module_xyz:f"},
            "cannot import 'no_such_module_xyz' for call 'no_such_module_xyz:f': "
            "ModuleNotFoundError: No module named 'no_such_module_xyz'",
        ),
        (
            {"call": f"{HERE}:nope"},
            f"module {HERE!r} has no attribute 'nope' (call '{HERE}:nope')",
        ),
        ({"call": f"{HERE}:HERE"}, f"call '{HERE}:HERE' is not callable; got a string"),
    ],
)
def test_spec_errors(spec, message):
    with pytest.raises(ConfigError) as caught:
        compile_filter(spec, where="p.filter")
    assert caught.value.key == "p.filter"
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("not " * 5000 + "a", "it nests too deeply"),
        ("(" * 5000 + "a" + ")" * 5000, "too many nested parentheses at column 201"),
    ],
)
def test_deep_nesting_is_a_config_error_not_a_crash(expression, reason):
    with pytest.raises(ConfigError) as caught:
        compile_filter(expression, where="p.filter")
    assert caught.value.message == f"invalid expression {expression[:57] + '...'!r}: {reason}"


def test_a_nul_character_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        compile_filter("a == '\x00'\x00", where="p.filter")
    assert caught.value.key == "p.filter"


def test_a_long_expression_is_clipped_in_messages():
    with pytest.raises(ConfigError) as caught:
        compile_filter("status == 'active' and " * 10 + "a b", where="p.filter")
    assert caught.value.message == (
        "invalid expression \"status == 'active' and status == 'active' and status == '...\": "
        "invalid syntax at column 233"
    )


def test_invalid_escapes_keep_their_backslash():
    assert check(r"x == '\d'", {"x": "\\d"}) is True


# The evaluator agrees with plain Python for generated records and expressions: Python's
# operators, except that a comparison Python refuses (TypeError) is False.

FIELDS = ["a", "b", "c"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-3, 3, allow_nan=False, allow_infinity=False)
    | st.text(alphabet="ab'\"", max_size=3)
)
VALUES = SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(st.sampled_from("ab"), SCALARS)
RECORDS = st.dictionaries(st.sampled_from(FIELDS), VALUES)
OPERATORS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


def _python(op, a, b):
    try:
        return OPERATORS[op](a, b)
    except TypeError:
        return False


def _field(name):
    return name, lambda record: record.get(name)


def _literal(value):
    return repr(value), lambda record: value


OPERANDS = st.one_of(
    st.sampled_from(FIELDS).map(_field),
    SCALARS.map(_literal),
    st.lists(SCALARS, max_size=3).map(_literal),
)


@st.composite
def comparisons(draw):
    operands = draw(st.lists(OPERANDS, min_size=2, max_size=4))
    ops = draw(st.lists(st.sampled_from(list(OPERATORS)), min_size=1, max_size=3))
    ops = ops[: len(operands) - 1]
    operands = operands[: len(ops) + 1]
    text = operands[0][0] + "".join(
        f" {op} {o[0]}" for op, o in zip(ops, operands[1:], strict=True)
    )

    def evaluate(record):
        values = [get(record) for _, get in operands]
        return all(_python(op, values[i], values[i + 1]) for i, op in enumerate(ops))

    return text, evaluate


def _both(parts):
    (left_text, left), (right_text, right) = parts
    return f"({left_text}) and ({right_text})", lambda r: left(r) and right(r)


def _either(parts):
    (left_text, left), (right_text, right) = parts
    return f"({left_text}) or ({right_text})", lambda r: left(r) or right(r)


def _negated(part):
    text, evaluate = part
    return f"not ({text})", lambda r: not evaluate(r)


EXPRESSIONS = st.recursive(
    comparisons(),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(_both),
        st.tuples(inner, inner).map(_either),
        inner.map(_negated),
    ),
    max_leaves=6,
)


@given(EXPRESSIONS, st.lists(RECORDS, min_size=1, max_size=5))
def test_the_evaluator_agrees_with_python(expression, records):
    text, expected = expression
    keep = compile_filter(text, where="p.filter")
    for record in records:
        assert keep(record) is bool(expected(record)), (text, record)
