"""Turn a source record into the record written to the destination (a pipeline's `fields:`).

```yaml
fields:
  id: id                                    # a path, dotted or JMESPath; missing -> null
  city: address.city
  first_tag: tags.0
  full_name: "{first_name} {last_name}"     # a template; {{ and }} are literal braces
  version: 2                                # a constant (number, boolean, null)
  plan: {value: free}                       # any constant, strings included
  email: {path: contact.email, required: true}
  country: {path: address.country, default: DE}
  score: {call: "myproject.scoring:score"}  # called with the whole source record
  phone: {path: phone, call: "myproject.phones:normalize"}  # called with the value at path
```

Everything is compiled once. Mapping a record is one loop over precompiled getters, and
`fields: all` (or no `fields:`) is a shallow `dict(record)`. Target field names are flat keys.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from interlink.connectors import MISSING, compile_selector
from interlink.errors import ConfigError, InterlinkError

__all__ = ["FieldMapping", "MappingError", "compile_mapping"]

Record = dict[str, Any]
Getter = Callable[[Record], Any]

_FORMS = ("path", "template", "value", "call")
_KEYS = (*_FORMS, "default", "required")
_EXPECTED = "expected a path, a template, a constant or one of {path, template, value, call}"


class MappingError(InterlinkError):
    """One field of one record could not be mapped; the engine records it and goes on.

    `field` is the target field. `error` is what was raised while computing it (by a `call:`
    function, or a JMESPath function given the wrong type), or None when a `required` path
    had no value. `str()` is one line: `field 'full_name': ValueError: no name`.
    """

    code = "MAPPING_ERROR"

    def __init__(self, field: str, error: BaseException | None = None, *, reason: str = "") -> None:
        self.field = field
        self.error = error
        super().__init__(f"field {field!r}: {reason or _describe(error)}")


class FieldMapping:
    """A compiled `fields:`; call it with a source record to get the destination record.

    ```python
    mapping = compile_mapping({"name": "{first} {last}", "city": "address.city"}, where="f")
    mapping({"first": "Ada", "last": "Lovelace", "address": {"city": "London"}})
    # {'name': 'Ada Lovelace', 'city': 'London'}
    ```

    `fields` lists the target field names in order (None when every field is copied).
    """

    __slots__ = ("_getters", "copies_all", "fields")

    def __init__(self, getters: tuple[tuple[str, Getter], ...] | None) -> None:
        self._getters = getters or ()
        self.copies_all = getters is None
        self.fields: list[str] | None = None if getters is None else [n for n, _ in getters]

    def __call__(self, record: Record) -> Record:
        if self.copies_all:
            return dict(record)
        out: Record = {}
        name = ""
        try:
            for name, get in self._getters:
                out[name] = get(record)
        except MappingError:
            raise
        except Exception as exc:
            raise MappingError(name, exc) from exc
        return out

    def __repr__(self) -> str:
        return f"FieldMapping(fields={'all' if self.fields is None else self.fields!r})"


def compile_mapping(spec: Literal["all"] | Mapping[str, Any] | None, *, where: str) -> FieldMapping:
    """Compile a `fields:` value; `where` is its key path, such as `pipelines.crm.fields`.

    Raises ConfigError (with `key=f"{where}.{field}"` for a bad field) on any mistake.
    """
    if spec is None or (isinstance(spec, str) and spec == "all"):
        return FieldMapping(None)
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"expected 'all' or a mapping of target field names to field specs; got {_show(spec)}",
            key=where,
        )
    if not spec:
        raise ConfigError("expected at least one field, or 'all'; got an empty mapping", key=where)
    getters: list[tuple[str, Getter]] = []
    for field, field_spec in spec.items():
        key = f"{where}.{field}"
        if not isinstance(field, str) or not field:
            raise ConfigError(
                f"a target field name must be a non-empty string; got {_show(field)}", key=key
            )
        getters.append((field, _compile_field(field, field_spec, key)))
    return FieldMapping(tuple(getters))


def _compile_field(field: str, spec: Any, key: str) -> Getter:
    if isinstance(spec, str):
        if "{" in spec or "}" in spec:
            return _compile_template(spec, key)
        return _value_at(field, spec, key)
    if spec is None or isinstance(spec, bool | int | float):
        return _constant(spec)
    if isinstance(spec, Mapping):
        return _compile_dict_form(field, spec, key)
    raise ConfigError(f"{_EXPECTED}; got {_kind(spec)}", key=key)


def _compile_dict_form(field: str, spec: Mapping[Any, Any], key: str) -> Getter:
    unknown = [k for k in spec if k not in _KEYS]
    if unknown:
        raise ConfigError(
            f"unknown key {', '.join(repr(k) for k in unknown)}; the keys are {', '.join(_KEYS)}",
            key=key,
        )
    forms = [k for k in _FORMS if k in spec]
    if not forms:
        got = f"keys {', '.join(spec)}" if spec else "an empty mapping"
        raise ConfigError(f"{_EXPECTED}; got {got}", key=key)
    if len(forms) > 1 and forms != ["path", "call"]:
        raise ConfigError(
            f"got both {forms[0]!r} and {forms[1]!r}; give one of path, template, value "
            "or call (only call may go with path)",
            key=key,
        )
    for extra in ("default", "required"):
        if extra in spec and "path" not in spec:
            raise ConfigError(f"{extra!r} goes only with 'path'", key=key)
    required = spec.get("required", False)
    if not isinstance(required, bool):
        raise ConfigError(f"'required' must be true or false; got {_show(required)}", key=key)
    if required and "default" in spec:
        raise ConfigError("'default' and 'required: true' contradict each other; keep one", key=key)

    if "value" in spec:
        return _constant(spec["value"])
    if "template" in spec:
        template = spec["template"]
        if not isinstance(template, str):
            raise ConfigError(f"expected a template string; got {_show(template)}", key=key)
        return _compile_template(template, key)
    function = _import_callable(spec["call"], key=key) if "call" in spec else None
    if "path" not in spec:
        assert function is not None
        return function
    get = _value_at(field, spec["path"], key, spec.get("default"), required)
    if function is None:
        return get
    call = function
    return lambda record: call(get(record))


def _value_at(
    field: str, path: Any, key: str, default: Any = None, required: bool = False
) -> Getter:
    """The value at `path`; `default` (None unless given) where it is missing or null."""
    if isinstance(path, str) and path.isidentifier() and default is None and not required:
        return lambda record: record.get(path)
    select = _compile_path(path, key)
    if required:

        def get_required(record: Record) -> Any:
            value = select(record)
            if value is MISSING or value is None:
                raise MappingError(field, reason=f"required path {path!r} is missing or null")
            return value

        return get_required
    if isinstance(default, dict | list):
        make_default = _constant(default)

        def get_or_copy(record: Record) -> Any:
            value = select(record)
            return make_default(record) if value is MISSING or value is None else value

        return get_or_copy

    def get(record: Record) -> Any:
        value = select(record)
        return default if value is MISSING or value is None else value

    return get


def _compile_path(path: Any, key: str) -> Getter:
    """A selector for `path` (MISSING where there is nothing), checked at compile time."""
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(f"expected a path (dotted or JMESPath); got {_show(path)}", key=key)
    if path.isidentifier():
        return lambda record: record.get(path, MISSING)
    try:
        return compile_selector(path)
    except Exception as exc:  # jmespath's ParseError; its text spans three lines
        reason = str(exc).splitlines()[0].removesuffix(", for expression:").removesuffix(":")
        raise ConfigError(f"invalid path {path!r}: {reason}", key=key) from None


def _compile_template(template: str, key: str) -> Getter:
    """Placeholders become positional `{}` fields of one format string, filled per record.

    A missing or null value renders as "", a boolean as true/false, a list or an object as
    compact JSON. Format specs (`{price:.2f}`) and conversions are not supported.
    """
    pieces: list[str] = []
    paths: list[str] = []
    i, n = 0, len(template)
    while i < n:
        char = template[i]
        if char == "{" and template.startswith("{{", i):
            pieces.append("{{")
            i += 2
        elif char == "}" and template.startswith("}}", i):
            pieces.append("}}")
            i += 2
        elif char == "{":
            end = template.find("}", i + 1)
            inner = template[i + 1 : end]
            if end < 0 or "{" in inner:
                raise ConfigError(
                    f"unclosed '{{' at position {i} in template {template!r}; "
                    "write '{{' for a literal brace",
                    key=key,
                )
            path = inner.strip()
            if not path:
                raise ConfigError(
                    f"empty placeholder at position {i} in template {template!r}; "
                    "expected a path such as {first_name}",
                    key=key,
                )
            if ":" in path:
                raise ConfigError(
                    f"format specs are not supported: '{{{inner}}}' in template {template!r}; "
                    "a placeholder is a path only (format the value with call:)",
                    key=key,
                )
            pieces.append("{}")
            paths.append(path)
            i = end + 1
        elif char == "}":
            raise ConfigError(
                f"single '}}' at position {i} in template {template!r}; "
                "write '}}' for a literal brace",
                key=key,
            )
        else:
            pieces.append(char)
            i += 1
    form = "".join(pieces)
    if not paths:
        return _constant(form.format())
    selects = [_compile_path(path, key) for path in paths]
    fill = form.format
    # One and two placeholders ("{first_name} {last_name}") are most templates; unrolled,
    # they skip building a list for every record.
    if len(selects) == 1:
        (select,) = selects
        if form == "{}":
            return lambda record: _text(select(record))
        return lambda record: fill(_text(select(record)))
    if len(selects) == 2:
        first, second = selects
        return lambda record: fill(_text(first(record)), _text(second(record)))
    return lambda record: fill(*[_text(select(record)) for select in selects])


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _constant(value: Any) -> Getter:
    if isinstance(value, dict | list):
        # Each record gets its own copy, so a destination that edits one edits no other.
        return lambda record: copy.deepcopy(value)
    return lambda record: value


def _import_callable(ref: Any, *, key: str) -> Callable[..., Any]:
    """The function named by `package.module:function` (or `module:Class.method`)."""
    module_name, _, attribute = ref.partition(":") if isinstance(ref, str) else ("", "", "")
    if not module_name or not attribute or ":" in attribute:
        raise ConfigError(f"expected 'package.module:function' for call; got {_show(ref)}", key=key)
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"cannot import {module_name!r} for call {ref!r}: {_describe(exc)}", key=key
        ) from exc
    for name in attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise ConfigError(
                f"module {module_name!r} has no attribute {attribute!r} (call {ref!r})", key=key
            ) from None
    if not callable(target):
        raise ConfigError(f"call {ref!r} is not callable; got {_kind(target)}", key=key)
    return target  # type: ignore[no-any-return]


def _describe(error: BaseException | None) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _show(value: Any) -> str:
    """A value as an error message shows it: strings quoted, anything else by its kind."""
    return repr(value) if isinstance(value, str) and value else _kind(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"
