"""How the command line prints an InterlinkError: one line per problem it carries."""

from __future__ import annotations

from interlink.errors import InterlinkError

__all__ = ["error_lines"]


def error_lines(error: InterlinkError) -> list[str]:
    """Return the lines to print for an error: one per problem, each on one line."""
    problems = getattr(error, "errors", None)
    if not isinstance(problems, list) or not problems:
        problems = [error]
    return [" ".join(str(problem).split()) for problem in problems]
