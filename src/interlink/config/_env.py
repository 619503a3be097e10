"""`${VAR}` substitution in the string values of a parsed `interlink.yaml`.

Three forms are understood inside any string value:

- `${VAR}`: the value of the environment variable `VAR`; an error when it is not set.
- `${VAR:-default}`: the value of `VAR`, or `default` when `VAR` is unset or empty.
- `$${`: a literal `${`, for the rare value that needs one.

Any other `$` is left alone, so `price: $5` and `pattern: ^a$` mean what they say.
Substitution runs after YAML parsing and before validation, on values only: mapping keys
are never substituted, so key paths in error messages always match the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["EnvProblem", "EnvSubstitution", "KeyPath", "expand_env", "substitute_env"]

KeyPath = tuple[Any, ...]

# `$${` (escape) or `${` followed by a name, an optional `:-default`, and the closing brace.
_TOKEN = re.compile(r"\$\$\{|\$\{")
_REFERENCE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class EnvProblem(NamedTuple):
    """A reference that could not be resolved: where it is, and what went wrong."""

    path: KeyPath
    message: str


class EnvSubstitution(NamedTuple):
    """The result of `substitute_env`.

    `used` lists every `(path, variable, value)` taken from the environment, so that the
    caller can keep secret values out of its error messages.
    """

    data: Any
    problems: list[EnvProblem]
    used: list[tuple[KeyPath, str, str]]


class _Unresolved(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def expand_env(
    text: str, env: Mapping[str, str], *, used: list[tuple[str, str]] | None = None
) -> str:
    """Return `text` with every `${...}` reference replaced from `env`.

    You get a `ValueError` whose message names the variable when a reference has no value
    and no default, or when a `${` is not closed by a valid `NAME}` / `NAME:-default}`.
    Pass a list as `used` to collect the `(name, value)` pairs taken from `env`.
    """
    try:
        return _expand(text, env, used)
    except _Unresolved as exc:
        raise ValueError(exc.message) from None


def _expand(text: str, env: Mapping[str, str], used: list[tuple[str, str]] | None) -> str:
    if "$" not in text:
        return text
    out: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        if match.start() < pos:
            # Inside a reference we already consumed (a default containing `${`).
            continue
        out.append(text[pos : match.start()])
        if match.group() == "$${":
            out.append("${")
            pos = match.end()
            continue
        ref = _REFERENCE.match(text, match.end())
        if ref is None:
            # Only the position: the text around it may be a secret.
            raise _Unresolved(
                f"malformed environment reference at character {match.start() + 1}; "
                "expected ${NAME} or ${NAME:-default} (write $${ for a literal ${)"
            )
        name, default = ref.group(1), ref.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise _Unresolved(
                    f"environment variable {name} is not set "
                    f"(use ${{{name}:-default}} for a default)"
                )
            out.append(default)
        else:
            if used is not None:
                used.append((name, value))
            out.append(value)
        pos = ref.end()
    out.append(text[pos:])
    return "".join(out)


def substitute_env(data: Any, env: Mapping[str, str]) -> EnvSubstitution:
    """Expand `${...}` in every string value of a parsed YAML tree.

    The tree is copied, not changed. Every problem is collected with the key path where it
    was found, rather than stopping at the first, so a user fixes them all in one go.
    """
    problems: list[EnvProblem] = []
    used: list[tuple[KeyPath, str, str]] = []

    def walk(node: Any, path: KeyPath) -> Any:
        if isinstance(node, str):
            found: list[tuple[str, str]] = []
            try:
                result = _expand(node, env, found)
            except _Unresolved as exc:
                problems.append(EnvProblem(path, exc.message))
                return node
            used.extend((path, name, value) for name, value in found)
            return result
        if isinstance(node, dict):
            return {key: walk(value, (*path, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, (*path, index)) for index, item in enumerate(node)]
        return node

    return EnvSubstitution(walk(data, ()), problems, used)
