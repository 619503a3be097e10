"""Turn a pydantic `ValidationError` into one-line `ConfigError`s a person can act on.

Each line reads `<file>:<line>: <key.path>: <what was expected>; got <value>`. The key path
is the one written in `interlink.yaml`: pydantic's union tags (`auth.bearer.token`) are
dropped and aliases (`in`) are kept. Values of secret-looking keys are never shown, and any
secret taken from the environment is masked wherever it would otherwise appear.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from interlink.errors import ConfigError, UnknownTypeError

from ._sections import section_of

__all__ = [
    "MASK",
    "describe_value",
    "did_you_mean",
    "errors_from_validation",
    "is_secret_name",
    "join_path",
    "scrub",
    "unknown_type_error",
]

MASK = "***"

_SECRET_NAMES = frozenset(
    {
        "token",
        "key",
        "password",
        "passwd",
        "client_secret",
        "secret",
        "refresh_token",
        "access_token",
        "id_token",
        "api_key",
        "apikey",
        "api-key",
        "x-api-key",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    }
)
_SECRET_PARTS = ("secret", "password", "passwd", "passphrase", "token", "credential", "apikey")
# `SMTP_PASS`, `PGPASS`, `DB_PWD`: the short spellings of a password in variable names.
_SECRET_ENDINGS = ("_key", "-key", "_token", "_secret", "pass", "pwd")
# `scheme://user:password@host`, or `user:password@host` with no scheme. The password runs
# to the LAST `@` before the path: `p@ss` is one password, not `p` and a host `ss@...`.
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?(?P<user>[^:/@\s'\"]*):[^/?#\s'\"]+@"
)
_REPR_LIMIT = 60
# Closer than for keys: values are short (`min` is 0.67 from `median`, `base64` from
# `base32`), and a wrong guess at a value misleads more than no guess.
_VALUE_CUTOFF = 0.75

Locate = Callable[[tuple[Any, ...]], int | None]


def is_secret_name(name: object) -> bool:
    """Say whether a key or variable name looks like it holds a secret (`token`, `DB_PASSWORD`)."""
    if not isinstance(name, str):
        return False
    lowered = name.lower()
    if lowered in _SECRET_NAMES or lowered.endswith(_SECRET_ENDINGS):
        return True
    return any(part in lowered for part in _SECRET_PARTS)


def join_path(path: Sequence[Any]) -> str | None:
    """Render a key path as `connections.shop.auth.token` (list items as `[0]`)."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or None


def describe_value(value: Any, *, key: object = None, secrets: Iterable[str] = ()) -> str:
    """Describe a value for `got ...` without ever echoing a secret or a whole mapping.

    `secrets` are masked before a long value is cut short: once cut, a secret no longer
    reads whole, and masking the message afterwards would miss it."""
    if is_secret_name(key):
        return "a value" if value not in (None, "") else "an empty value"
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str | int | float | bool):
        text = scrub(repr(value), secrets)
        if len(text) > _REPR_LIMIT:
            text = text[: _REPR_LIMIT - 4] + "...'"
        return text
    return f"a {type(value).__name__}"


def did_you_mean(got: object, known: Sequence[str]) -> str:
    """`"; did you mean 'merge'?"` when `got` is a near miss of one of `known`, else `""`.

    Case is ignored (`Merge` suggests `merge`); the closest value wins.
    """
    if not isinstance(got, str) or not got:
        return ""
    by_lower = {value.lower(): value for value in reversed(known)}
    close = difflib.get_close_matches(got.lower(), list(by_lower), n=1, cutoff=_VALUE_CUTOFF)
    if not close and len(got) >= 3:
        # A value cut short (`newest` for `newest_wins`) is a near miss too, if only one
        # known value starts that way.
        close = [value for value in by_lower if value.startswith(got.lower())][:2]
        if len(close) != 1:
            return ""
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


def unknown_type_error(
    kind: str,
    got: str,
    known: list[str],
    *,
    file: str | None = None,
    key: str | None = None,
    line: int | None = None,
) -> UnknownTypeError:
    """An `UnknownTypeError` whose line also says which known value was probably meant."""
    error = UnknownTypeError(kind, got, known, file=file, key=key, line=line)
    hint = did_you_mean(got, known)
    if hint:
        ConfigError.__init__(error, error.message + hint, file=file, key=key, line=line)
    return error


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URL passwords and every given secret value in `text`."""
    text = _USERINFO.sub(lambda m: f"{m['scheme'] or ''}{m['user']}:{MASK}@", text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        # Very short values would mask innocent text; real secrets are longer than this.
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


def errors_from_validation(
    exc: ValidationError,
    *,
    model: type[BaseModel],
    data: Any,
    file: str | None,
    locate: Locate,
    secrets: Iterable[str] = (),
) -> list[ConfigError]:
    """Translate every error in `exc` into a `ConfigError`, dropping exact repeats.

    `data` is the mapping that was validated (used to name what the user actually wrote),
    `locate` maps a key path to its line in the file, and `secrets` are values that must not
    appear in any message.
    """
    secrets = tuple(secrets)
    seen: set[str] = set()
    out: list[ConfigError] = []
    for details in exc.errors(include_url=False):
        error = _translate(
            details, model=model, data=data, file=file, locate=locate, secrets=secrets
        )
        if secrets or "@" in error.message:
            error = _rebuild(error, scrub(error.message, secrets))
        if str(error) not in seen:
            seen.add(str(error))
            out.append(error)
    return _merge_alternatives(out)


_EXPECTED_GOT = re.compile(
    r"^expected (?P<what>.+?); got (?P<got>.+?)(?P<hint>; did you mean .+)?$"
)


def _merge_alternatives(errors: list[ConfigError]) -> list[ConfigError]:
    """One line for a value that matched no member of a union (`fields: al`, for `'all'`
    or a mapping): pydantic reports each member's refusal on its own."""
    groups: dict[tuple[str | None, int | None], list[ConfigError]] = {}
    for error in errors:
        groups.setdefault((error.key, error.line), []).append(error)
    out: list[ConfigError] = []
    for error in errors:
        group = groups[(error.key, error.line)]
        if len(group) == 1:
            out.append(error)
            continue
        if error is not group[0]:
            continue
        found = [_EXPECTED_GOT.match(e.message) for e in group]
        matches = [m for m in found if m is not None]
        plain = not any(isinstance(e, UnknownTypeError) for e in group)
        if not plain or len(matches) < len(group) or len({m["got"] for m in matches}) > 1:
            out.extend(group)
            continue
        what = " or ".join(m["what"].removeprefix("expected ") for m in matches)
        hint = next((m["hint"] for m in matches if m["hint"]), "")
        message = f"expected {what}; got {matches[0]['got']}{hint}"
        out.append(ConfigError(message, file=error.file, key=error.key, line=error.line))
    return out


def _rebuild(error: ConfigError, message: str) -> ConfigError:
    if message == error.message:
        return error
    if isinstance(error, UnknownTypeError):
        # Keep the class (callers tell an unknown `type:` by it), not the secret.
        ConfigError.__init__(error, message, file=error.file, key=error.key, line=error.line)
        error.got = MASK
        return error
    return ConfigError(message, file=error.file, key=error.key, line=error.line)


def _translate(
    details: ErrorDetails,
    *,
    model: type[BaseModel],
    data: Any,
    file: str | None,
    locate: Locate,
    secrets: tuple[str, ...] = (),
) -> ConfigError:
    kind = details["type"]
    ctx = details.get("ctx") or {}
    value = details.get("input")
    path, parent_model = _clean_path(model, details["loc"], data)

    if kind == "union_tag_invalid":
        discriminator = str(ctx.get("discriminator", "type")).strip("'\"")
        known = _quoted(str(ctx.get("expected_tags", "")))
        where = (*path, discriminator)
        return unknown_type_error(
            str(path[-1]) if path else "type",
            str(ctx.get("tag")),
            known,
            file=file,
            key=join_path(where),
            line=locate(where),
        )
    if kind == "union_tag_not_found":
        discriminator = str(ctx.get("discriminator", "type")).strip("'\"")
        known = _union_tags(model, details["loc"])
        hint = f" (one of {', '.join(known)})" if known else ""
        message = f"missing required key {discriminator!r}{hint}"
        return ConfigError(message, file=file, key=join_path(path), line=locate(path))
    if kind == "missing":
        parent, name = path[:-1], path[-1] if path else "?"
        return ConfigError(
            f"missing required key {name!r}", file=file, key=join_path(parent), line=locate(parent)
        )
    if kind == "extra_forbidden":
        parent, name = path[:-1], path[-1] if path else "?"
        message = f"unknown key {name!r}"
        fields = _field_names(parent_model)
        close = difflib.get_close_matches(str(name), fields, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif fields:
            message += f" (expected one of {', '.join(sorted(set(fields)))})"
        return ConfigError(message, file=file, key=join_path(parent), line=locate(path))
    if kind == "invalid_key" or (path and path[-1] == "[key]"):
        # `loc` ends in the bad key itself, or in the key and then `[key]` (a typed dict).
        where = path[:-1] if path[-1:] == ("[key]",) else path
        message = f"keys must be text; got {describe_value(value, secrets=secrets)}"
        if isinstance(value, bool):
            message += " (YAML reads yes, no, on and off as true/false: quote the key)"
        return ConfigError(message, file=file, key=join_path(where[:-1]), line=locate(where))
    if kind == "literal_error":
        known = _quoted(str(ctx.get("expected", "")))
        if path and path[-1] == "type":
            return unknown_type_error(
                str(path[-2]) if len(path) > 1 else "type",
                str(value),
                known,
                file=file,
                key=join_path(path),
                line=locate(path),
            )
        got = describe_value(value, key=path[-1] if path else None, secrets=secrets)
        hint = "" if is_secret_name(path[-1] if path else None) else did_you_mean(value, known)
        what = f"one of {', '.join(known)}" if len(known) != 1 else repr(known[0])
        return ConfigError(
            f"expected {what}; got {got}{hint}",
            file=file,
            key=join_path(path),
            line=locate(path),
        )
    elif kind in ("value_error", "assertion_error"):
        # Our own validators write the whole message, `got ...` included.
        error = ctx.get("error")
        text = str(error) if error is not None else details["msg"]
        text = text.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if not path:
            # A check across the whole file names its key itself: "resources.shpo: ...".
            named_key = re.match(r"^([A-Za-z_][\w-]*(?:\.[\w-]+)*): (.+)$", text)
            if named_key:
                path = tuple(named_key.group(1).split("."))
                text = named_key.group(2)
        key = path[-1] if path else None
        if is_secret_name(key):
            text = text.split("; got ", 1)[0] + "; got a value"
        line = locate(path)
        if isinstance(value, dict):
            # A mapping-wide check that names one of its keys points at that key's line.
            named = [k for k in value if text.endswith(f"got {k!r}")]
            if named:
                line = locate((*path, named[0]))
        return ConfigError(_one_line(text), file=file, key=join_path(path), line=line)
    else:
        expected = _expected(kind, ctx, details["msg"])
    got = describe_value(value, key=path[-1] if path else None, secrets=secrets)
    return ConfigError(f"{expected}; got {got}", file=file, key=join_path(path), line=locate(path))


def _expected(kind: str, ctx: dict[str, Any], msg: str) -> str:
    simple = {
        "int_parsing": "expected a whole number",
        "int_type": "expected a whole number",
        "int_from_float": "expected a whole number",
        "float_parsing": "expected a number",
        "float_type": "expected a number",
        "finite_number": "expected a finite number",
        "bool_parsing": "expected true or false",
        "bool_type": "expected true or false",
        "string_type": "expected text (quote it in YAML if it looks like a number)",
        "dict_type": "expected a mapping",
        "model_type": "expected a mapping",
        "model_attributes_type": "expected a mapping",
        "list_type": "expected a list",
        "none_required": "expected no value",
    }
    if kind in simple:
        return simple[kind]
    bounds = {
        "greater_than": ("gt", "greater than"),
        "greater_than_equal": ("ge", "at least"),
        "less_than": ("lt", "less than"),
        "less_than_equal": ("le", "at most"),
    }
    if kind in bounds:
        name, words = bounds[kind]
        return f"expected a number {words} {_number(ctx.get(name))}"
    if kind == "string_too_short":
        return f"expected text of at least {ctx.get('min_length')} characters"
    if kind == "string_too_long":
        return f"expected text of at most {ctx.get('max_length')} characters"
    # Anything else: pydantic's own sentence, made to fit our one-line form.
    text = _one_line(msg)
    text = re.sub(r"^Input should be ", "expected ", text)
    return text[:1].lower() + text[1:]


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quoted(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


# --- key paths and models -------------------------------------------------------------


def _clean_path(
    root: type[BaseModel], loc: tuple[int | str, ...], data: Any
) -> tuple[tuple[Any, ...], type[BaseModel] | None]:
    """Return the YAML key path for a pydantic `loc`, and the model that holds its last key.

    Union tags are dropped. When the user wrote a scalar where pydantic expanded it into a
    mapping (`timeout: 10`, `database: sqlite:///x.db`), the path stops at that scalar.
    """
    path: list[Any] = []
    annotation: Any = root
    parent: type[BaseModel] | None = root
    node: Any = data
    node_ok = True
    for part in loc:
        parent = _as_model(annotation)
        annotation, is_tag = _step(annotation, part)
        if is_tag:
            continue
        if node_ok and isinstance(node, dict):
            node = node.get(part)
        elif node_ok and isinstance(node, list) and isinstance(part, int):
            node = node[part] if 0 <= part < len(node) else None
        elif node_ok and node is not None:
            # A scalar stood here in the file; deeper parts are pydantic's expansion of it.
            break
        else:
            node_ok = False
        path.append(part)
    return tuple(path), parent


def _as_model(annotation: Any) -> type[BaseModel] | None:
    members = _members(annotation)
    if len(members) == 1 and isinstance(members[0], type) and issubclass(members[0], BaseModel):
        return members[0]
    return None


def _members(annotation: Any) -> list[Any]:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _step(annotation: Any, part: int | str) -> tuple[Any, bool]:
    """Follow one `loc` part down the type; say whether the part was a union tag."""
    members = _members(annotation)
    if len(members) > 1:
        for member in members:
            if isinstance(member, type) and issubclass(member, BaseModel):
                if part in _literal_values(member):
                    return member, True
        return None, False
    only = members[0] if members else None
    while get_origin(only) is Annotated:
        only = get_args(only)[0]
    if isinstance(only, type) and issubclass(only, BaseModel):
        for name, field in only.model_fields.items():
            if part in (name, field.alias):
                section = section_of(field.metadata)
                return (section.annotation() if section else field.annotation), False
        return None, False
    origin = get_origin(only)
    args = get_args(only)
    if origin is dict and len(args) == 2:
        return args[1], False
    if origin in (list, tuple) and args:
        return args[0], False
    return None, False


def _literal_values(model: type[BaseModel]) -> set[Any]:
    values: set[Any] = set()
    for field in model.model_fields.values():
        if get_origin(field.annotation) is Literal:
            values.update(get_args(field.annotation))
    return values


def _union_tags(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    annotation: Any = root
    for part in loc:
        annotation, _ = _step(annotation, part)
    tags: list[str] = []
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get("type")
            if field is not None and get_origin(field.annotation) is Literal:
                tags.extend(str(v) for v in get_args(field.annotation))
    return tags


def _field_names(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    names: list[str] = []
    for name, field in model.model_fields.items():
        names.append(field.alias or name)
        if field.alias and model.model_config.get("populate_by_name"):
            names.append(name)
    return names
