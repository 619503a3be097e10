"""The fenced snippets of a Markdown page, and what the docs test does with each.

Every fence in README.md and docs/*.md is one `Snippet`, named `file:line` (the line of
its opening fence). What it is comes from its info string and from a marker, an HTML
comment on the last non-blank line before the fence:

- `yaml` / `yml`: an interlink.yaml, loaded with interlink's own loader. A fragment goes
  into a config with `<!-- snippet: under resources.shop.customers -->` (its text becomes
  the value at that key path), and is laid over an example project's file with
  `<!-- snippet: project examples/quickstart -->` (the two can be combined: `under
  resources.shop.customers; project examples/sandbox-tour`).
- `sh`, `bash`, `shell`, `console`: commands, run by bash in a temporary project against a
  real sandbox; in a `console` block only the `$ ` lines are commands. `project PATH`
  picks the project's interlink.yaml (default: examples/quickstart; `project empty`:
  none, for a block that begins with `interlink init`).
- `above`, on either kind: lay the page's nearest YAML snippet above it (resolved with
  its own marker) over the project first, so commands can use the config the page shows.
- `python`, `json`, `text`, `http`, `html`, `toml`, `ini` and fences without an info
  string: not run. But a `text` or bare block that holds commands (a `$ ` prompt, or a
  first line such as `interlink ...`, `.venv/bin/...`, `curl ...`) is a shell snippet
  in disguise: the test fails until it is tagged `sh`/`console` or marked skipped.
- `<!-- snippet: skip, REASON -->` leaves any snippet out, for the reason given (needed).

Anything else (an unknown info string, a YAML fragment without `under`, a marker that
does not parse) is `unclassified`, and its test fails saying what to write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SHELL_LANGS", "YAML_LANGS", "Marker", "Snippet", "parse_marker", "snippets_of"]

YAML_LANGS = frozenset({"yaml", "yml"})
SHELL_LANGS = frozenset({"sh", "bash", "shell", "console"})
# Languages the test knows and does not run.
PLAIN_LANGS = frozenset({"python", "json", "text", "http", "html", "toml", "ini", "jinja", ""})

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(?P<body>.*?)\s*-->\s*$")
# The first words of a line that is a command someone would paste into a shell.
_COMMAND = re.compile(
    r"^(\$ |interlink\s|\.venv/bin/|\.\./\.\./\.venv/bin/|curl\s|export\s|make\s|cd\s|"
    r"pip\s|python3?\s|apt-get\s|[A-Z_]+=\S*\s+\S)"
)


@dataclass(frozen=True)
class Marker:
    """What a `<!-- snippet: ... -->` comment asks for."""

    skip: str | None = None
    """The reason to leave the snippet out, when it is skipped."""
    project: str | None = None
    """An example's interlink.yaml (repository-relative) to run in or to lay YAML over."""
    under: str | None = None
    """The dotted key path a YAML fragment belongs at."""
    above: bool = False
    """Lay the page's nearest YAML snippet above this one (as it resolves) over the project."""
    error: str | None = None
    """Why the marker could not be read."""


@dataclass(frozen=True)
class Snippet:
    """One fenced block of a Markdown page."""

    file: str
    line: int
    lang: str
    text: str
    marker: Marker = field(default_factory=Marker)
    previous_yaml: Snippet | None = None
    """The nearest `yaml` snippet above this one on its page, for the `above` directive."""

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def kind(self) -> str:
        """`skip`, `yaml`, `shell`, `plain` or `unclassified`."""
        if self.marker.error is not None:
            return "unclassified"
        if self.marker.skip is not None:
            return "skip"
        if self.lang in YAML_LANGS:
            return "yaml"
        if self.lang in SHELL_LANGS:
            return "shell"
        if self.lang in PLAIN_LANGS and not self.looks_like_commands():
            return "plain"
        return "unclassified"

    def looks_like_commands(self) -> bool:
        """True for a block of commands, whatever its info string says."""
        lines = [line for line in self.text.splitlines() if line.strip()]
        if any(line.startswith("$ ") for line in lines):
            return True
        return bool(lines) and bool(_COMMAND.match(lines[0].lstrip()))

    def why_unclassified(self) -> str:
        """What to write in the page to make the snippet classifiable."""
        if self.marker.error is not None:
            return self.marker.error
        if self.lang not in PLAIN_LANGS:
            return (
                f"unknown info string {self.lang!r}: use yaml, sh, console or text, "
                "or mark it <!-- snippet: skip, REASON -->"
            )
        return (
            "this block holds commands but is not tagged sh or console: tag it so the "
            "test runs it, or mark it <!-- snippet: skip, REASON -->"
        )

    def commands(self) -> str:
        """The script a shell snippet runs: in a `console` block, the `$ ` lines (and their
        continuation lines); otherwise the whole text."""
        if self.lang != "console":
            return self.text
        script: list[str] = []
        continued = False
        for line in self.text.splitlines():
            if continued or line.startswith("$ "):
                script.append(line[2:] if line.startswith("$ ") and not continued else line)
                continued = line.rstrip().endswith("\\")
        return "\n".join(script) + "\n"


def parse_marker(body: str) -> Marker:
    """Read the text of a `<!-- snippet: ... -->` comment."""
    if body == "skip" or body.startswith(("skip,", "skip ")):
        reason = body[4:].lstrip(", ").strip()
        if not reason:
            return Marker(error="a skip marker needs its reason: <!-- snippet: skip, REASON -->")
        return Marker(skip=reason)
    project: str | None = None
    under: str | None = None
    above = False
    for directive in filter(None, (part.strip() for part in body.split(";"))):
        word, _, arg = directive.partition(" ")
        arg = arg.strip()
        if word == "project" and arg:
            project = arg
        elif word == "under" and re.fullmatch(r"[\w-]+(\.[\w-]+)*", arg):
            under = arg
        elif word == "above" and not arg:
            above = True
        else:
            return Marker(
                error=(
                    f"cannot read the marker directive {directive!r}: expected 'skip, "
                    "REASON', 'project PATH', 'under KEY.PATH' or 'above' (joined with ';')"
                )
            )
    return Marker(project=project, under=under, above=above)


def snippets_of(path: Path, name: str) -> list[Snippet]:
    """Every fenced block of the page at `path`, named `name:line`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Snippet] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent = len(opening["indent"])
        fence = opening["fence"]
        lang = opening["info"].strip().split(" ")[0].lower()
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = _FENCE.match(lines[end])
            if (
                closing is not None
                and closing["fence"].startswith(fence[0])
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        previous = next((s for s in reversed(found) if s.lang in YAML_LANGS), None)
        found.append(
            Snippet(
                file=name,
                line=index + 1,
                lang=lang,
                text="\n".join(body) + "\n",
                marker=_marker_before(lines, index),
                previous_yaml=previous,
            )
        )
        index = end + 1
    return found


def _marker_before(lines: list[str], index: int) -> Marker:
    previous = index - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return Marker()
    match = _MARKER.match(lines[previous])
    return parse_marker(match["body"]) if match else Marker()
