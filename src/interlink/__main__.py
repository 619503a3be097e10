"""The `interlink` console script and `python -m interlink`: the command line, started
with the cyclic garbage collector held off.

A process that starts imports some 750 modules, and while their objects pile up the
collector walks all of them again and again: about 10% of an `interlink run` that finds
nothing new (issue 15, docs/benchmarks.md "Start-up"). Nothing imported is garbage, so the
collector is off until the command is known: every command but `run` turns it back on
before it starts (`interlink.cli.main`), and `run` once its imports are done and frozen
out of the collector's sight (`interlink.cli._runtime.tune_collector`).

`interlink run` goes straight to the run when its command line is one
`cli._run_argv.parse_run_argv` reads with certainty: building the Typer app, every
command's options with it, costs about 80 ms that a run does not need. Any other command
line, `--help` included, goes to Typer (`interlink.cli.main`).
"""

from __future__ import annotations

import gc
import sys

__all__ = ["main"]


def main() -> None:
    """Run the command line."""
    gc.disable()
    from interlink.cli._run_argv import parse_run_argv
    from interlink.cli._runtime import skip_httpx_command_line

    skip_httpx_command_line()
    direct = parse_run_argv(sys.argv[1:])
    if direct is not None:
        from interlink.cli._direct import run_direct

        run_direct(direct)
    from interlink.cli.main import main as command_line

    command_line()


if __name__ == "__main__":
    main()
