"""A job module for `interlink worker --import tests.cli.worker_kinds`."""

from __future__ import annotations

from typing import Any

from interlink.jobs import JobContext, JobKinds


async def echo(context: JobContext) -> dict[str, Any]:
    return {"echo": context.job.args}


def register(kinds: JobKinds) -> None:
    kinds.register("test.echo", echo)
