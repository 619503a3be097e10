"""Decide which source records a pipeline takes (its `filter:`).

```yaml
filter: status == "active" and address.country in ["DE", "AT"] and not exists(deleted_at)
filter: {call: "myproject.rules:wanted"}    # the function's truth decides
```

An expression is parsed once with Python's `ast` and compiled into nested closures; the
text is never evaluated. The language, and nothing more:

- fields: `status`, `address.country`, and `field("some-field")`, `field("class")`,
  `field("tags.0")`, `field("items[0].sku")` for names that are Python keywords, contain
  `-`, index a list or need JMESPath. A missing field is None.
- literals: strings, integers and floats (with an optional sign), True, False, None, and
  lists or tuples of literals (a tuple is a list, as in JSON).
- comparisons `== != < <= > >= in not in is is not`, chained too (`1 <= n < 10`). A
  comparison of incompatible values (`None < 3`, `"a" < 1`, `"a" in 5`) is False, never an
  error. `is` and `is not` compare only with None, True or False.
- `and`, `or`, `not` and parentheses, as in Python; the record is taken when the whole
  expression is true.
- functions: `len(x)`, `lower(x)`, `upper(x)` (None for a value of the wrong type),
  `startswith(x, prefix)`, `endswith(x, suffix)`, `contains(x, part)` (substring, list
  item or object key; False for the wrong types), `exists(field)` (present and not None).

There is no arithmetic, no subscripting, no attribute of anything but a field, no other
call, and no name starting with `__`; each is a ConfigError when the filter is compiled.
The bare names null, true and false are refused too (write None, True, False). Line
breaks count as spaces, so a YAML block scalar may spread an expression over lines. An
expression never raises at run time; only a `call:` function can (FilterError).
"""

from __future__ import annotations

import ast
import operator
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from interlink.errors import ConfigError, InterlinkError

from ._mapping import _describe, _import_callable, _kind, _value_at

__all__ = ["FilterError", "compile_filter", "take_all"]

Record = dict[str, Any]
Evaluator = Callable[[Record], Any]
Filter = Callable[[Record], bool]

_FUNCTIONS = ("len", "lower", "upper", "startswith", "endswith", "contains", "exists", "field")
_ONLY = (
    "only fields, literals, comparisons, and/or/not and the functions "
    + ", ".join(_FUNCTIONS)
    + " are allowed"
)
_EXPECTED = "expected an expression or {call: 'package.module:function'}"
_SCALARS = str | int | float | bool | None
_SINGLETONS = (None, True, False)
_NOT_LITERAL: Any = object()


class FilterError(InterlinkError):
    """A `call:` filter function raised for a record; the engine records it and goes on.

    `error` is the exception it raised; `str()` is `filter: ValueError: ...`.
    """

    code = "FILTER_ERROR"

    def __init__(self, error: BaseException) -> None:
        self.error = error
        super().__init__(f"filter: {_describe(error)}")


def compile_filter(spec: str | Mapping[str, Any] | None, *, where: str) -> Filter:
    """Compile a `filter:` value into a record -> bool function (None takes every record).

    `where` is the key path of the value, such as `pipelines.crm.filter`; every mistake
    raises ConfigError with that key.
    """
    if spec is None:
        return take_all
    if isinstance(spec, str):
        return _compile_expression(spec, where)
    if isinstance(spec, Mapping):
        if set(spec) != {"call"}:
            got = f"keys {', '.join(map(str, spec))}" if spec else "an empty mapping"
            raise ConfigError(f"{_EXPECTED}; got {got}", key=where)
        function = _import_callable(spec["call"], key=where)

        def keep(record: Record) -> bool:
            try:
                return bool(function(record))
            except Exception as exc:
                raise FilterError(exc) from exc

        return keep
    raise ConfigError(f"{_EXPECTED}; got {_kind(spec)}", key=where)


def take_all(record: Record) -> bool:
    return True


def _compile_expression(text: str, where: str) -> Filter:
    # A YAML block scalar may spread the expression over lines; Python wants one line.
    source = " ".join(line.strip() for line in text.strip().splitlines())
    if not source:
        raise ConfigError(f"{_EXPECTED}; got an empty string", key=where)
    try:
        with warnings.catch_warnings():
            # Invalid escapes ("\d") warn; the string keeps its backslash, as in Python.
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        at = f"column {exc.offset}" if exc.offset else "the end"
        hint = ""
        if re.search(r"[A-Za-z_)]\w*\.\d", source):  # tags.0 lexes as `tags`, then `.0`
            hint = '; an item of a list is written field("tags.0")'
        raise ConfigError(
            f"invalid expression {_clip(source)!r}: {exc.msg} at {at}{hint}", key=where
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        # ValueError: a NUL character; the others: nesting deeper than the parser allows.
        reason = _describe(exc) if isinstance(exc, ValueError) else "it nests too deeply"
        raise ConfigError(f"invalid expression {_clip(source)!r}: {reason}", key=where) from None
    try:
        evaluate = _Compiler(source, where).compile(tree.body)
    except RecursionError:
        raise ConfigError(
            f"invalid expression {_clip(source)!r}: it nests too deeply", key=where
        ) from None
    if _yields_bool(tree.body):
        return evaluate
    return lambda record: bool(evaluate(record))


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _yields_bool(node: ast.expr) -> bool:
    if isinstance(node, ast.Compare) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
    ):
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("startswith", "endswith", "contains", "exists")
    )


class _Compiler:
    """Turns each supported node into a closure; anything else is a ConfigError."""

    def __init__(self, source: str, where: str) -> None:
        self.source = source
        self.where = where

    def compile(self, node: ast.expr) -> Evaluator:
        value = self._literal(node)
        if value is not _NOT_LITERAL:
            return lambda record: value
        if isinstance(node, ast.BoolOp):
            return self._bool_op(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            operand = self.compile(node.operand)
            return lambda record: not operand(record)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Name | ast.Attribute):
            return self._field(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Subscript):
            self._unsupported(node, _ONLY + ' (an item is a path: field("tags.0"))')
        self._unsupported(node)

    def _literal(self, node: ast.expr) -> Any:
        """The literal's value, or _NOT_LITERAL when the node is no literal."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, _SCALARS):
                return node.value
            self._unsupported(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = node.operand
            if (
                isinstance(operand, ast.Constant)
                and isinstance(operand.value, int | float)
                and not isinstance(operand.value, bool)
            ):
                return -operand.value if isinstance(node.op, ast.USub) else operand.value
            self._unsupported(node, "arithmetic is not supported")
        if isinstance(node, ast.List | ast.Tuple):
            items = [self._literal(item) for item in node.elts]
            if any(item is _NOT_LITERAL for item in items):
                self._unsupported(node, "the items of a list must be literals")
            return items
        return _NOT_LITERAL

    def _bool_op(self, node: ast.BoolOp) -> Evaluator:
        operands = [self.compile(value) for value in node.values]
        if isinstance(node.op, ast.And):
            if len(operands) == 2:
                first, second = operands
                return lambda record: first(record) and second(record)

            def all_of(record: Record) -> Any:
                result: Any = True
                for operand in operands:
                    result = operand(record)
                    if not result:
                        return result
                return result

            return all_of
        if len(operands) == 2:
            first, second = operands
            return lambda record: first(record) or second(record)

        def any_of(record: Record) -> Any:
            result: Any = False
            for operand in operands:
                result = operand(record)
                if result:
                    return result
            return result

        return any_of

    def _compare(self, node: ast.Compare) -> Evaluator:
        left = self.compile(node.left)
        steps: list[tuple[Callable[[Any, Any], Any], Evaluator]] = []
        previous = node.left
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot) and not (
                _is_singleton(previous) or _is_singleton(comparator)
            ):
                word = "is" if isinstance(op, ast.Is) else "is not"
                raise ConfigError(
                    f"{word!r} compares only with None, True or False; use "
                    f"{'==' if word == 'is' else '!='} in {self._segment(node)!r}",
                    key=self.where,
                )
            steps.append((self._operator(op, comparator), self.compile(comparator)))
            previous = comparator
        if len(steps) == 1:
            ((compare, right),) = steps
            return lambda record: compare(left(record), right(record))

        def chain(record: Record) -> bool:
            a = left(record)
            for compare, right in steps:
                b = right(record)
                if not compare(a, b):
                    return False
                a = b
            return True

        return chain

    def _operator(self, op: ast.cmpop, comparator: ast.expr) -> Callable[[Any, Any], Any]:
        if isinstance(op, ast.In | ast.NotIn):
            choices = self._literal(comparator)
            if isinstance(choices, list) and all(isinstance(c, _SCALARS) for c in choices):
                # A literal list of scalars becomes a set: one hash instead of a scan.
                return _member_of(frozenset(choices), negate=isinstance(op, ast.NotIn))
        return _OPERATORS[type(op)]

    def _field(self, node: ast.Name | ast.Attribute) -> Evaluator:
        parts: list[str] = []
        inner: ast.expr = node
        while isinstance(inner, ast.Attribute):
            parts.append(inner.attr)
            inner = inner.value
        if not isinstance(inner, ast.Name):
            self._unsupported(node)
        parts.append(inner.id)
        parts.reverse()
        if any(part.startswith("__") for part in parts):
            self._unsupported(node, "names starting with '__' are not allowed")
        if len(parts) == 1 and parts[0] in ("null", "true", "false"):
            raise ConfigError(
                f"{parts[0]!r} would be a field; write None, True or False "
                f"(or field({parts[0]!r}) for a field of that name)",
                key=self.where,
            )
        return self._getter(".".join(parts))

    def _getter(self, path: str) -> Evaluator:
        return _value_at("", path, self.where)

    def _call(self, node: ast.Call) -> Evaluator:
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in _FUNCTIONS:
            self._unsupported(node)
        name = func.id
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            self._unsupported(node, f"{name}() takes plain arguments, no keywords or *")
        arity = 2 if name in ("startswith", "endswith", "contains") else 1
        if len(node.args) != arity:
            noun = "argument" if arity == 1 else "arguments"
            raise ConfigError(
                f"{name}() takes {arity} {noun}; got {len(node.args)} in "
                f"{self._segment(node, whole=True)!r}",
                key=self.where,
            )
        if name == "field":
            return self._getter(self._field_path(node))
        if name == "exists":
            (arg,) = node.args
            if isinstance(arg, ast.Name | ast.Attribute) or (
                isinstance(arg, ast.Call)
                and isinstance(arg.func, ast.Name)
                and arg.func.id == "field"
            ):
                get = self.compile(arg)
                return lambda record: get(record) is not None
            raise ConfigError(
                f"exists() takes a field, such as exists(address.city) or "
                f'exists(field("some-field")); got {self._segment(node, whole=True)!r}',
                key=self.where,
            )
        if arity == 1:
            function = _UNARY[name]
            (x,) = (self.compile(arg) for arg in node.args)
            return lambda record: function(x(record))
        binary = _BINARY[name]
        x, y = (self.compile(arg) for arg in node.args)
        return lambda record: binary(x(record), y(record))

    def _field_path(self, node: ast.Call) -> str:
        (arg,) = node.args
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value):
            raise ConfigError(
                f'field() takes a path in quotes, such as field("some-field"); '
                f"got {self._segment(node, whole=True)!r}",
                key=self.where,
            )
        return arg.value

    def _unsupported(self, node: ast.expr, reason: str = _ONLY) -> NoReturn:
        raise ConfigError(
            f"unsupported expression {self._segment(node)!r}: {reason}", key=self.where
        )

    def _segment(self, node: ast.expr, *, whole: bool = False) -> str:
        if isinstance(node, ast.Call) and not whole:
            return self._segment(node.func) + "(...)"
        return _clip(ast.get_source_segment(self.source, node) or ast.unparse(node))


def _is_singleton(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and any(node.value is s for s in _SINGLETONS)


def _member_of(choices: frozenset[Any], *, negate: bool) -> Callable[[Any, Any], bool]:
    if negate:

        def not_member(value: Any, _: Any) -> bool:
            try:
                return value not in choices
            except TypeError:  # unhashable: a list or an object equals no scalar
                return True

        return not_member

    def member(value: Any, _: Any) -> bool:
        try:
            return value in choices
        except TypeError:
            return False

    return member


def _guarded(compare: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def safe(a: Any, b: Any) -> Any:
        try:
            return compare(a, b)
        except TypeError:  # None < 3, "a" < 1, 1 in None: incompatible, so not true
            return False

    return safe


def _contained(a: Any, b: Any) -> Any:
    return a in b


def _not_contained(a: Any, b: Any) -> Any:
    return a not in b


_OPERATORS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: _guarded(operator.lt),
    ast.LtE: _guarded(operator.le),
    ast.Gt: _guarded(operator.gt),
    ast.GtE: _guarded(operator.ge),
    ast.In: _guarded(_contained),
    ast.NotIn: _guarded(_not_contained),
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


def _len(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | dict) else None


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) else None


def _startswith(value: Any, prefix: Any) -> bool:
    return isinstance(value, str) and isinstance(prefix, str) and value.startswith(prefix)


def _endswith(value: Any, suffix: Any) -> bool:
    return isinstance(value, str) and isinstance(suffix, str) and value.endswith(suffix)


def _contains(value: Any, part: Any) -> bool:
    if isinstance(value, str):
        return isinstance(part, str) and part in value
    if isinstance(value, list | dict):
        try:
            return part in value
        except TypeError:  # an unhashable key looked up in an object
            return False
    return False


_UNARY: dict[str, Callable[[Any], Any]] = {"len": _len, "lower": _lower, "upper": _upper}
_BINARY: dict[str, Callable[[Any, Any], bool]] = {
    "startswith": _startswith,
    "endswith": _endswith,
    "contains": _contains,
}
