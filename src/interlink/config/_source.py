"""Where each key of a loaded `interlink.yaml` was written, to point later errors at it.

Some mistakes only show once a config is used: a filter that does not compile, a `call:`
that does not import, a database that cannot be opened. The code that finds them raises a
`ConfigError` with the key path alone (`pipelines.crm.filter`); `ConfigSource.locate` gives
it the file and line every loader error has:

```python
config, source = load_config_source("interlink.yaml")
try:
    compile_filter(config.pipelines["crm"].filter, where="pipelines.crm.filter")
except ConfigError as error:
    raise source.locate(error) from None   # interlink.yaml:14: pipelines.crm.filter: ...
```
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from interlink.config._env import KeyPath
from interlink.config._messages import join_path, scrub, unknown_type_error
from interlink.errors import ConfigError, UnknownTypeError

__all__ = ["ConfigSource"]


@dataclass(frozen=True, eq=False)
class ConfigSource:
    """The file a config came from, the line of every key path in it, and the secret
    values taken from the environment (masked in every message `locate` returns)."""

    file: str
    lines: Mapping[KeyPath, int] = field(default_factory=dict, repr=False)
    secrets: frozenset[str] = field(default=frozenset(), repr=False)

    def line_of(self, key: str) -> int | None:
        """The line of a dotted key path (`pipelines.crm.fields.email`), or of its nearest
        ancestor written in the file; None when not even its first key is in the file."""
        by_key = self._by_key()
        candidate = key
        while candidate:
            line = by_key.get(candidate)
            if line is not None:
                return line
            cut = max(candidate.rfind("."), candidate.rfind("["))
            candidate = candidate[:cut] if cut > 0 else ""
        return None

    def locate(self, error: ConfigError) -> ConfigError:
        """`error` with this file and the line of its key, and every problem in its
        `.errors` likewise, in file order; an error that already names a file, or whose key
        is not in the file (a command-line option, say), is left as it is."""
        problems = [self._locate_one(problem) for problem in _problems(error)]
        problems.sort(key=lambda problem: problem.line or 0)
        first = problems[0]
        if len(problems) > 1:
            first.errors = problems
        return first

    def _locate_one(self, error: ConfigError) -> ConfigError:
        if error.file is not None or not error.key:
            return error
        line = self.line_of(error.key)
        if line is None:
            return error
        message = scrub(error.message, self.secrets)
        if isinstance(error, UnknownTypeError):
            return unknown_type_error(
                error.kind, error.got, error.known, file=self.file, key=error.key, line=line
            )
        return ConfigError(message, file=self.file, key=error.key, line=line)

    def _by_key(self) -> dict[str, int]:
        return {
            joined: line
            for path, line in self.lines.items()
            if (joined := join_path(path)) is not None
        }


def _problems(error: ConfigError) -> Iterable[ConfigError]:
    found = getattr(error, "errors", None)
    if isinstance(found, list) and found and all(isinstance(e, ConfigError) for e in found):
        return found
    return [error]
