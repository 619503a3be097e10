import pytest
from hypothesis import given, strategies as st

from interlink.config import expand_env, substitute_env

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)


def test_plain_reference():
    assert expand_env("Bearer ${TOKEN}", {"TOKEN": "abc"}) == "Bearer abc"


def test_several_references_in_one_value():
    env = {"HOST": "api.example.com", "VERSION": "v2"}
    assert expand_env("https://${HOST}/${VERSION}/", env) == "https://api.example.com/v2/"


def test_default_used_when_unset_or_empty():
    assert expand_env("${PORT:-8080}", {}) == "8080"
    assert expand_env("${PORT:-8080}", {"PORT": ""}) == "8080"
    assert expand_env("${PORT:-8080}", {"PORT": "9000"}) == "9000"


def test_empty_default():
    assert expand_env("a${X:-}b", {}) == "ab"


def test_default_may_hold_url_characters():
    assert expand_env("${DB:-sqlite:///x.db?a=1}", {}) == "sqlite:///x.db?a=1"


def test_empty_value_without_default_is_kept():
    assert expand_env("[${X}]", {"X": ""}) == "[]"


def test_escaped_reference_is_literal():
    assert expand_env("$${HOME}", {"HOME": "/root"}) == "${HOME}"
    assert expand_env("a $${X} and ${X}", {"X": "1"}) == "a ${X} and 1"


def test_other_dollars_are_left_alone():
    assert expand_env("costs $5, $HOME, ^a$ and $$", {"HOME": "/root"}) == (
        "costs $5, $HOME, ^a$ and $$"
    )


def test_substituted_values_are_not_expanded_again():
    assert expand_env("${A}", {"A": "${B}", "B": "no"}) == "${B}"


def test_missing_variable_names_it_and_suggests_a_default():
    with pytest.raises(ValueError) as info:
        expand_env("${SHOP_TOKEN}", {})
    assert str(info.value) == (
        "environment variable SHOP_TOKEN is not set (use ${SHOP_TOKEN:-default} for a default)"
    )


@pytest.mark.parametrize("text", ["${", "${}", "${1X}", "${A B}", "x ${NAME", "${A:default}"])
def test_malformed_reference(text):
    with pytest.raises(ValueError, match="malformed environment reference"):
        expand_env(text, {"A": "1", "NAME": "1"})


def test_malformed_reference_does_not_echo_the_value():
    with pytest.raises(ValueError) as info:
        expand_env("abc${SECRET:-hunter2", {})
    assert str(info.value).startswith("malformed environment reference at character 4;")
    assert "hunter2" not in str(info.value)


def test_used_values_are_reported():
    used: list[tuple[str, str]] = []
    expand_env("${A}-${B:-b}-${C}", {"A": "1", "C": "3"}, used=used)
    assert used == [("A", "1"), ("C", "3")]


def test_substitute_walks_values_not_keys():
    items: list[object] = ["${VALUE}", 1, None, {"deep": "x${VALUE}x"}]
    data = {
        "${KEY}": "${VALUE}",
        "list": items,
        "number": 5,
        "flag": True,
    }
    result = substitute_env(data, {"KEY": "k", "VALUE": "v"})
    assert result.data == {
        "${KEY}": "v",
        "list": ["v", 1, None, {"deep": "xvx"}],
        "number": 5,
        "flag": True,
    }
    assert result.problems == []
    assert ("list", 3, "deep") in [path for path, _, _ in result.used]
    # The input is not changed.
    assert items[0] == "${VALUE}"


def test_substitute_collects_every_problem_with_its_path():
    data = {"a": {"b": "${ONE}"}, "c": ["ok", "${TWO}"]}
    result = substitute_env(data, {})
    assert [(p.path, p.message.split(" is not set")[0]) for p in result.problems] == [
        (("a", "b"), "environment variable ONE"),
        (("c", 1), "environment variable TWO"),
    ]


@given(st.text().filter(lambda s: "$" not in s))
def test_text_without_dollar_is_unchanged(text):
    assert expand_env(text, {}) == text


@given(NAMES, st.text(), st.text().filter(lambda s: "$" not in s))
def test_set_variable_is_replaced_by_its_value(name, value, prefix):
    assert expand_env("${" + name + "}", {name: value}) == value
    assert expand_env(prefix + "${" + name + "}" + prefix, {name: value}) == prefix + value + prefix


@given(NAMES, st.text(alphabet=st.characters(blacklist_characters="}$")))
def test_default_is_used_when_variable_is_unset(name, default):
    assert expand_env("${" + name + ":-" + default + "}", {}) == default
