"""`Project`: an interlink project in a directory of its own, and a runner for its commands."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CommandResult", "Project"]


@dataclass(frozen=True)
class CommandResult:
    """What one `interlink` command did: its exit code and what it printed."""

    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None

    @property
    def output(self) -> str:
        """stdout then stderr, for failure messages."""
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (
            f"interlink {' '.join(self.args)} -> exit {self.exit_code}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


class Project:
    """A directory holding `interlink.yaml` (and its database), and a way to run commands
    in it as a user would, in-process.

    ```python
    project = Project(tmp_path)
    project.write_config(f'''
    connections:
      shop: {{base_url: {mock.url}}}
    resources:
      shop:
        products: {{path: /products}}
    ''')
    result = project.run("read", "shop.products", "-o", "jsonl")   # exit code 0 checked
    ```
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        return self.path / "interlink.yaml"

    def write_config(self, config: str | Mapping[str, Any]) -> Path:
        """Write `interlink.yaml`: YAML text (dedented) or a mapping dumped as YAML."""
        import textwrap

        if isinstance(config, str):
            text = textwrap.dedent(config).lstrip("\n")
        else:
            import yaml

            text = yaml.safe_dump(dict(config), sort_keys=False)
        self.config_path.write_text(text)
        return self.config_path

    def run(
        self,
        *args: str,
        expect: int | None = 0,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
    ) -> CommandResult:
        """Run `interlink ARGS...` in the project directory (its `interlink.yaml` is the
        default config) and return what it did.

        With `expect` (0 by default), an exit code other than it fails the test with the
        command's output; `expect=None` checks nothing.
        """
        from typer.testing import CliRunner

        from interlink.cli.main import app
        from interlink.http import forget_environment_cassettes

        runner = CliRunner()
        # Each command starts as a new process would: the cassettes INTERLINK_RECORD and
        # INTERLINK_REPLAY name are opened afresh, not shared with an earlier command.
        forget_environment_cassettes()
        try:
            with contextlib.chdir(self.path):
                result = runner.invoke(app, list(args), env=dict(env or {}), input=input)
        finally:
            forget_environment_cassettes()
        done = CommandResult(
            tuple(args),
            result.exit_code,
            result.stdout,
            result.stderr,
            result.exception if not isinstance(result.exception, SystemExit) else None,
        )
        if expect is not None and done.exit_code != expect:
            raise AssertionError(f"expected exit code {expect}; {done}")
        return done

    def files(self, pattern: str = "**/*") -> Sequence[Path]:
        """The project's files matching `pattern`, sorted (cassettes, databases...)."""
        return sorted(p for p in self.path.glob(pattern) if p.is_file())

    def __repr__(self) -> str:
        return f"Project({str(self.path)!r})"
