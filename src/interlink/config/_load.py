"""Read `interlink.yaml` into an `InterlinkConfig`, with errors that point at a line.

The file goes through four steps, and each can fail with a `ConfigError` that names the
file, the line and the key path:

1. read the text (missing, unreadable or non-UTF-8 file);
2. compose and construct the YAML with PyYAML's safe loader, recording the line of every key
   and refusing duplicate keys, control characters, NUL characters written as escapes
   (`"\\0"`) and nesting deeper than 100 levels;
3. substitute `${VAR}` and `${file:PATH}` references in string values (see
   `interlink.config._env`), from the environment and, under it, the `.env` file beside
   the config (see `interlink.config._dotenv`);
4. validate with pydantic, each error translated to one line (see `interlink.config._messages`).

A step that finds several problems reports them all: the `ConfigError` raised carries the
first (in file order) as its message and the whole list as `.errors`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from interlink.config._dotenv import dotenv_path, read_dotenv
from interlink.config._env import FILE_PREFIX, KeyPath, substitute_env
from interlink.config._messages import (
    describe_value,
    errors_from_validation,
    is_secret_name,
    join_path,
)
from interlink.config._model import InterlinkConfig
from interlink.config._source import ConfigSource
from interlink.errors import ConfigError

__all__ = ["load_config", "load_config_source", "parse_config"]

# Aliases let a small file describe a huge tree ("billion laughs"); stop well before that.
_MAX_NODES = 100_000
# PyYAML composes nested collections recursively; a few hundred levels exhaust Python's
# stack. No config needs more than a dozen.
_MAX_DEPTH = 100
_MERGE_TAG = "tag:yaml.org,2002:merge"


def load_config(
    path: str | Path = "interlink.yaml",
    *,
    env: Mapping[str, str] | None = None,
    dotenv: bool = True,
) -> InterlinkConfig:
    """Read and validate an `interlink.yaml`.

    `${VAR}` references are filled from `env`, which defaults to `os.environ`, and, for a
    variable `env` does not have, from the `.env` file beside the config (unless `dotenv`
    is false). `${file:PATH}` reads a file relative to the config's folder. You get a
    `ConfigError` for anything wrong with the file (or its `.env`); its `.errors` lists
    every problem found, one line each.

    ```python
    config = load_config("interlink.yaml")
    shop = config.connections["shop"]
    ```
    """
    return load_config_source(path, env=env, dotenv=dotenv)[0]


def load_config_source(
    path: str | Path = "interlink.yaml",
    *,
    env: Mapping[str, str] | None = None,
    dotenv: bool = True,
) -> tuple[InterlinkConfig, ConfigSource]:
    """`load_config`, and where each key was written: give `source.locate(error)` a
    `ConfigError` found later (a filter that does not compile) to point it at its line."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise _single("no such file (run 'interlink init' to create one)", file) from None
    except IsADirectoryError:
        raise _single("is a directory, not a config file", file) from None
    except PermissionError:
        raise _single("cannot read the file: permission denied", file) from None
    except OSError as exc:
        raise _single(f"cannot read the file: {exc.strerror or exc}", file) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _single(f"not UTF-8 text (bad byte at offset {exc.start})", file, line) from None
    environment: Mapping[str, str] = os.environ if env is None else env
    if dotenv:
        try:
            values = read_dotenv(dotenv_path(path))
        except ConfigError as exc:
            raise _collect(exc.errors) from None
        if values:
            # The real environment wins: .env only fills in what it does not set.
            environment = {**values, **environment}
    return _parse(text, file, environment)


def parse_config(text: str, *, file: str, env: Mapping[str, str] | None = None) -> InterlinkConfig:
    """Validate the text of an `interlink.yaml`; `file` is the name used in error messages.

    An empty document (or one with only comments) is a valid config with no connections.
    No `.env` is read; `${file:PATH}` is relative to the folder of `file`.
    """
    return _parse(text, file, env)[0]


def _parse(
    text: str, file: str, env: Mapping[str, str] | None
) -> tuple[InterlinkConfig, ConfigSource]:
    data, lines = _read_yaml(text, file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _single(
            f"expected a mapping of keys (connections, database, ...) at the top level; "
            f"got {describe_value(data)}",
            file,
            lines.get((), 1),
        )

    substituted = substitute_env(
        data, os.environ if env is None else env, base_dir=Path(file).parent
    )
    if substituted.problems:
        raise _collect(
            [
                ConfigError(
                    problem.message,
                    file=file,
                    key=join_path(problem.path),
                    line=_locate(lines, problem.path),
                )
                for problem in substituted.problems
            ]
        )
    # A file named by `${file:PATH}` holds a secret whatever it is called.
    secrets = {
        value
        for path, name, value in substituted.used
        if name.startswith(FILE_PREFIX)
        or is_secret_name(name)
        or (path and is_secret_name(path[-1]))
    }

    try:
        config = InterlinkConfig.model_validate(substituted.data)
    except ValidationError as exc:
        errors = errors_from_validation(
            exc,
            model=InterlinkConfig,
            data=substituted.data,
            file=file,
            locate=lambda path: _locate(lines, path),
            secrets=secrets,
        )
        # `from None`: pydantic's own text echoes input values, secrets included.
        raise _collect(errors) from None
    known = frozenset(secrets)
    for connection in config.connections.values():
        # All of them, not only those written under the connection: a resource's `path`
        # or a `${VAR}` meant for another key can put a secret into its requests too.
        connection._secret_values = known
    return config, ConfigSource(file, lines, known)


# --- YAML with line numbers -------------------------------------------------------------


def _read_yaml(text: str, file: str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse one YAML document and map every key path in it to the line of its key."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        # Raised by the reader's check of the whole text, before any parsing.
        raise _reader_error(exc, text, file) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _check_keys(loader, node, file)
        data = loader.construct_document(node)
        lines: dict[KeyPath, int] = {(): node.start_mark.line + 1}
        _index(loader, node, (), lines, file, set())
        _refuse_nul(data, (), lines, file)
        return data, lines
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, text, file) from None
    except yaml.YAMLError as exc:
        raise _single(f"invalid YAML: {_one_line(str(exc))}", file) from None
    finally:
        loader.dispose()


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting deeper than `_MAX_DEPTH` before its stack
    runs out."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested too deeply (more than {_MAX_DEPTH} levels)",
                    event.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str) -> ConfigError:
    """A character YAML never allows (NUL, other control characters, U+FFFE), with its place."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        what = f"a control character (\\x{code:02x})"
    else:
        what = f"a character that is not allowed (U+{code:04X})"
    return _single(
        f"invalid YAML: {what} at column {column}; YAML text cannot contain it", file, line
    )


def _refuse_nul(data: Any, path: KeyPath, lines: dict[KeyPath, int], file: str) -> None:
    """Refuse a NUL written as an escape (`"a\\0b"`): no file name, URL or header holds one,
    and the libraries below would fail on it with a traceback."""
    errors: list[ConfigError] = []
    stack: list[tuple[Any, KeyPath]] = [(data, path)]
    seen: set[int] = set()
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                errors.append(_nul_error("the value", where, where, lines, file))
        elif isinstance(value, dict | list) and id(value) not in seen:
            seen.add(id(value))  # an alias shares its target's objects
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and "\x00" in key:
                    errors.append(_nul_error("a key", where, (*where, key), lines, file))
                stack.append((item, (*where, key)))
    if errors:
        raise _collect(errors)


def _nul_error(
    what: str, key: KeyPath, at: KeyPath, lines: dict[KeyPath, int], file: str
) -> ConfigError:
    return ConfigError(
        f"{what} contains a NUL character (\\0); remove it",
        file=file,
        key=join_path(key),
        line=_locate(lines, at),
    )


def _yaml_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    problem = _one_line(exc.problem or exc.context or "cannot parse")
    message = f"invalid YAML: {problem}"
    if mark is not None:
        message += f" (column {mark.column + 1})"
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f", {_one_line(exc.context)} on line {exc.context_mark.line + 1}"
    if "'\\t'" in problem:
        message += "; indent with spaces, not tabs"
    # `{` starts a flow mapping in YAML, so `key: {a: ${X}}` breaks unless the value is quoted.
    source = text.splitlines()
    marks = [m for m in (exc.problem_mark, exc.context_mark) if m is not None]
    if any(m.line < len(source) and "${" in source[m.line] for m in marks):
        message += "; quote values that use ${...} inside { } or [ ]"
    return _single(message, file, mark.line + 1 if mark is not None else None)


def _check_keys(loader: yaml.SafeLoader, root: yaml.Node, file: str) -> None:
    """Refuse duplicate keys in any mapping; YAML would keep only the last one silently."""
    errors: list[ConfigError] = []
    stack: list[tuple[yaml.Node, KeyPath]] = [(root, ())]
    seen_nodes: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue  # an alias of a node already checked
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = _key(loader, key_node)
                line = key_node.start_mark.line + 1
                if key is not None and key in first_line:
                    errors.append(
                        ConfigError(
                            f"duplicate key {key!r} (first defined on line {first_line[key]})",
                            file=file,
                            key=join_path(path),
                            line=line,
                        )
                    )
                elif key is not None:
                    first_line[key] = line
                stack.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
    if errors:
        raise _collect(errors)


def _index(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    file: str,
    ancestors: set[int],
) -> None:
    # Runs after construction, so merge keys (`<<: *base`) are already flattened into the
    # mapping, merged entries first: a key written out later wins, as it does in the data.
    if id(node) in ancestors:
        raise _single("a YAML alias refers to its own parent", file, node.start_mark.line + 1)
    if len(lines) > _MAX_NODES:
        raise _single(f"too large: more than {_MAX_NODES} keys once aliases are expanded", file)
    if isinstance(node, yaml.MappingNode):
        ancestors.add(id(node))
        for key_node, value_node in node.value:
            key = _key(loader, key_node)
            if key is None:
                continue
            lines[(*path, key)] = key_node.start_mark.line + 1
            _index(loader, value_node, (*path, key), lines, file, ancestors)
        ancestors.discard(id(node))
    elif isinstance(node, yaml.SequenceNode):
        ancestors.add(id(node))
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index(loader, item, (*path, i), lines, file, ancestors)
        ancestors.discard(id(node))


def _key(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """Construct a scalar key as the data will hold it (`on` is `True` in YAML 1.1)."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    return loader.construct_object(node)


def _locate(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """Return the line of `path`, or of its nearest ancestor that is in the file."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return lines.get(())


# --- errors ----------------------------------------------------------------------------


def _single(message: str, file: str, line: int | None = None) -> ConfigError:
    return _collect([ConfigError(message, file=file, line=line)])


def _collect(errors: list[ConfigError]) -> ConfigError:
    """Return the first error in file order, carrying all of them as `.errors`."""
    ordered = sorted(errors, key=lambda e: e.line if e.line is not None else 0)
    first = ordered[0]
    # ConfigError does not declare `errors`; the CLI reads it with getattr.
    first.errors = ordered
    return first


def _one_line(text: str) -> str:
    return " ".join(text.split())
