"""`${VAR}` substitution in the string values of a parsed `interlink.yaml`.

Four forms are understood inside any string value:

- `${VAR}`: the value of the environment variable `VAR`; an error when it is not set.
- `${VAR:-default}`: the value of `VAR`, or `default` when `VAR` is unset or empty.
- `${file:PATH}`: the content of the file at `PATH` (relative to the folder of
  `interlink.yaml`), one trailing line break dropped: a Docker or Kubernetes secret.
- `$${`: a literal `${`, for the rare value that needs one.

Any other `$` is left alone, so `price: $5` and `pattern: ^a$` mean what they say.
Substitution runs after YAML parsing and before validation, on values only: mapping keys
are never substituted, so key paths in error messages always match the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "FILE_PREFIX",
    "MAX_SECRET_FILE",
    "EnvProblem",
    "EnvSubstitution",
    "KeyPath",
    "expand_env",
    "substitute_env",
]

KeyPath = tuple[Any, ...]

# `$${` (escape) or `${` followed by a name, an optional `:-default`, and the closing brace.
_TOKEN = re.compile(r"\$\$\{|\$\{")
_REFERENCE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# `${file:PATH}`; `${file:-x}` stays a variable named `file` with a default.
_FILE_REFERENCE = re.compile(r"file:(?!-)([^}]*)\}")

FILE_PREFIX = "file:"
"""How `used` names a value read by `${file:PATH}`: `file:PATH`, as written."""
MAX_SECRET_FILE = 64 * 1024
"""The largest file `${file:PATH}` reads: a token or a key, not a document."""


class EnvProblem(NamedTuple):
    """A reference that could not be resolved: where it is, and what went wrong."""

    path: KeyPath
    message: str


class EnvSubstitution(NamedTuple):
    """The result of `substitute_env`.

    `used` lists every `(path, variable, value)` taken from the environment (and, named
    `file:PATH`, from files), so that the caller can keep secret values out of its error
    messages.
    """

    data: Any
    problems: list[EnvProblem]
    used: list[tuple[KeyPath, str, str]]


class _Unresolved(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def expand_env(
    text: str,
    env: Mapping[str, str],
    *,
    used: list[tuple[str, str]] | None = None,
    base_dir: str | Path | None = None,
) -> str:
    """Return `text` with every `${...}` reference replaced from `env` (and files).

    You get a `ValueError` whose message names the variable when a reference has no value
    and no default, or when a `${` is not closed by a valid `NAME}` / `NAME:-default}`, and
    one naming the path when a `${file:PATH}` cannot be read (never its content). A
    relative `PATH` is taken from `base_dir` (default: the working directory). Pass a list
    as `used` to collect the `(name, value)` pairs taken from `env` (`file:PATH` for files).
    """
    try:
        return _expand(text, env, used, Path(base_dir or "."))
    except _Unresolved as exc:
        raise ValueError(exc.message) from None


def _expand(
    text: str, env: Mapping[str, str], used: list[tuple[str, str]] | None, base_dir: Path
) -> str:
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
        file_ref = _FILE_REFERENCE.match(text, match.end())
        if file_ref is not None:
            written = file_ref.group(1)
            content = _read_secret_file(written, base_dir)
            if used is not None:
                used.append((FILE_PREFIX + written, content))
            out.append(content)
            pos = file_ref.end()
            continue
        ref = _REFERENCE.match(text, match.end())
        if ref is None:
            # Only the position: the text around it may be a secret.
            raise _Unresolved(
                f"malformed environment reference at character {match.start() + 1}; "
                "expected ${NAME}, ${NAME:-default} or ${file:PATH} (write $${ for a "
                "literal ${)"
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


def _read_secret_file(written: str, base_dir: Path) -> str:
    """The content of a `${file:PATH}` secret, or `_Unresolved` naming the path only."""
    if not written.strip():
        raise _Unresolved("${file:} names no file; expected ${file:PATH}")
    path = Path(written).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    where = f"${{file:{written}}}" + (f" ({path})" if str(path) != written else "")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SECRET_FILE + 1)
    except FileNotFoundError:
        raise _Unresolved(f"{where}: no such file") from None
    except IsADirectoryError:
        raise _Unresolved(f"{where}: is a folder, not a file") from None
    except PermissionError:
        raise _Unresolved(f"{where}: cannot read the file: permission denied") from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise _Unresolved(f"{where}: cannot read the file: {reason}") from None
    if len(raw) > MAX_SECRET_FILE:
        raise _Unresolved(
            f"{where}: larger than {MAX_SECRET_FILE // 1024} KiB; ${{file:PATH}} reads a "
            "secret such as a token or a key"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Unresolved(f"{where}: not UTF-8 text") from None
    # Secret files are usually written by `echo` or an editor: one line break at the end.
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def substitute_env(
    data: Any, env: Mapping[str, str], *, base_dir: str | Path | None = None
) -> EnvSubstitution:
    """Expand `${...}` in every string value of a parsed YAML tree.

    The tree is copied, not changed. Every problem is collected with the key path where it
    was found, rather than stopping at the first, so a user fixes them all in one go.
    `${file:PATH}` is read relative to `base_dir` (default: the working directory).
    """
    problems: list[EnvProblem] = []
    used: list[tuple[KeyPath, str, str]] = []
    folder = Path(base_dir or ".")

    def walk(node: Any, path: KeyPath) -> Any:
        if isinstance(node, str):
            found: list[tuple[str, str]] = []
            try:
                result = _expand(node, env, found, folder)
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
