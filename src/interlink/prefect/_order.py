"""In which order a flow runs pipelines: the order given, or `after:` edges sorted.

```python
plan_order(["shop", "orders", "invoices"], None, {"invoices": ["orders"]})
# [Step("shop", ()), Step("orders", ()), Step("invoices", ("orders",))]
```

Everything is checked before anything runs: an unknown pipeline, an edge to a pipeline
the flow does not run, and a cycle are each a `ConfigError` that names them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from interlink.errors import ConfigError

__all__ = ["Step", "plan_order"]


class Step(NamedTuple):
    """One pipeline of the flow and the pipelines it runs after (directly)."""

    pipeline: str
    after: tuple[str, ...]


def plan_order(
    known: Sequence[str],
    pipelines: Sequence[str] | None = None,
    after: Mapping[str, Sequence[str]] | None = None,
) -> list[Step]:
    """The steps of a flow over the pipelines `known` to the config.

    `pipelines` are those to run (default: every known one). Without `after`, they run
    in that order, each after the one before it, so a failure stops the rest. With
    `after` (`{"invoices": ["orders"]}`: invoices runs after orders), the edges decide
    the order, ties keep the order of `pipelines`, and a failure stops only the
    pipelines that run after the failed one, directly or not.
    """
    if isinstance(pipelines, str):
        raise ConfigError(
            f"expected a list of names, got the string {pipelines!r}", key="pipelines"
        )
    chosen = list(known if pipelines is None else pipelines)
    for name in chosen:
        _check_known(name, known, "pipelines")
    doubled = sorted({name for name in chosen if chosen.count(name) > 1})
    if doubled:
        raise ConfigError(f"{', '.join(doubled)} named more than once", key="pipelines")
    if not chosen:
        raise ConfigError("no pipeline to run", key="pipelines")
    if after is None:
        return [Step(name, (chosen[i - 1],) if i else ()) for i, name in enumerate(chosen)]
    edges = _edges(chosen, known, after)
    return _sorted(chosen, edges)


def _check_known(name: str, known: Sequence[str], key: str) -> None:
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"unknown pipeline {name!r}{hint} (known: {', '.join(known) or 'none defined'})",
        key=key,
    )


def _edges(
    chosen: list[str], known: Sequence[str], after: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...]]:
    edges: dict[str, tuple[str, ...]] = dict.fromkeys(chosen, ())
    for name, before in after.items():
        where = f"after.{name}"
        if isinstance(before, str):
            raise ConfigError(f"expected a list of pipeline names, got {before!r}", key=where)
        _check_known(name, known, "after")
        for other in (name, *before):
            _check_known(other, known, where)
            if other not in edges:
                raise ConfigError(
                    f"{other!r} is not one of the pipelines this flow runs "
                    f"({', '.join(chosen)}); add it to pipelines or drop the edge",
                    key=where,
                )
        if name in before:
            raise ConfigError(f"{name!r} cannot run after itself", key=where)
        edges[name] = tuple(dict.fromkeys(before))
    return edges


def _sorted(chosen: list[str], edges: dict[str, tuple[str, ...]]) -> list[Step]:
    """Kahn's sort, taking the earliest ready pipeline in `chosen` order each time."""
    done: set[str] = set()
    steps: list[Step] = []
    while len(steps) < len(chosen):
        ready = next(
            (n for n in chosen if n not in done and all(b in done for b in edges[n])), None
        )
        if ready is None:
            raise ConfigError(
                f"the pipelines run after each other in a cycle: {_cycle(edges, done)} "
                "(each runs after the next)",
                key="after",
            )
        done.add(ready)
        steps.append(Step(ready, edges[ready]))
    return steps


def _cycle(edges: dict[str, tuple[str, ...]], done: set[str]) -> str:
    """One cycle among the pipelines left, as `a -> b -> a` (a runs after b ...)."""
    start = next(n for n in edges if n not in done)
    path = [start]
    while True:
        following = next(b for b in edges[path[-1]] if b not in done)
        if following in path:
            loop = path[path.index(following) :] + [following]
            return " -> ".join(loop)
        path.append(following)
