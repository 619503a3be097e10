"""`interlink jobs submit | status | list | cancel | wait`: the jobs API from the shell.

Every command talks to a running `interlink serve` through `interlink.client.JobsClient`,
at `--url` (env INTERLINK_URL) with `--api-key` (env INTERLINK_API_KEY). Exit codes: 0 ok;
1 when a waited job ended failed or cancelled, the wait timed out, or the server failed; 2
for bad input (no API key, a refused key, an unknown job, a request the server rejected).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from interlink.cli._options import DryRunOption, FullRefreshOption

if TYPE_CHECKING:
    from interlink.client import JobsClient

__all__ = ["DEFAULT_URL", "make_client", "register"]

DEFAULT_URL = "http://127.0.0.1:8000"

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="INTERLINK_URL",
        metavar="URL",
        help="The interlink server.",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="INTERLINK_API_KEY",
        metavar="KEY",
        help="The API key to send as a bearer token.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the server's data as JSON instead of a table.")
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=0, metavar="S", help="Stop waiting after S seconds."),
]

jobs_app = typer.Typer(
    name="jobs",
    help="Submit, watch and cancel jobs on an interlink server.",
    no_args_is_help=True,
)


def make_client(url: str, api_key: str) -> JobsClient:
    """The client every command uses; tests replace this to aim at a fake transport."""
    from interlink.client import JobsClient

    return JobsClient(url, api_key)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(" ".join(message.split()), err=True)
    return typer.Exit(code)


@contextmanager
def _client(url: str, api_key: str | None) -> Iterator[JobsClient]:
    """A client for the command, with API errors turned into one line and an exit code."""
    from interlink.errors import ApiError, TransportError

    if not api_key:
        raise _fail("no API key: pass --api-key or set INTERLINK_API_KEY", 2)
    try:
        client = make_client(url, api_key)
    except ValueError as error:
        raise _fail(str(error), 2) from None
    try:
        with client:
            yield client
    except ApiError as error:
        status = error.status_code
        # A refused request is the caller's to fix; a 429 or 5xx is worth trying later.
        bad_input = status is not None and 400 <= status < 500 and status != 429
        hint = f"; is the server running at {url}?" if isinstance(error, TransportError) else ""
        raise _fail(str(error) + hint, 2 if bad_input else 1) from None


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _wait(client: JobsClient, job_id: int, timeout: float, as_json: bool) -> None:
    """Wait for the job with a spinner, show how it ended, exit 1 unless it completed."""
    from interlink.cli import _render_jobs

    if as_json:
        job = client.wait_for_job(job_id, timeout=timeout)
        _print_json(job)
    else:
        with _render_jobs.JobWait(job_id) as display:
            job = client.wait_for_job(job_id, timeout=timeout, on_update=display.update)
        _render_jobs.show_job(job)
    status = job.get("status")
    if status != "completed":
        reason = f": {job['error']}" if job.get("error") else ""
        raise _fail(f"job {job_id} {status}{reason}", 1)


def submit(
    pipeline: Annotated[str, typer.Argument(help="The pipeline to run, as the server names it.")],
    full_refresh: FullRefreshOption = False,
    dry_run: DryRunOption = False,
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            help="Run for this connected account of the source's connection ('*': each).",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Stop after N records.")
    ] = None,
    priority: Annotated[
        int, typer.Option(metavar="P", help="Higher runs first among queued jobs.")
    ] = 0,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the job to finish and show how it ended.")
    ] = False,
    timeout: TimeoutOption = 300.0,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue a run of PIPELINE on the server; with --wait, follow it to the end."""
    with _client(url, api_key) as client:
        data = client.submit_job(
            pipeline,
            full_refresh=full_refresh,
            dry_run=dry_run,
            limit=limit,
            priority=priority,
            account=account,
        )
        if as_json and not wait:
            _print_json(data)
        elif not as_json:
            from interlink.cli import _render_jobs

            _render_jobs.show_submitted(data)
        if wait:
            _wait(client, int(data["job_id"]), timeout, as_json)


def status(
    job_id: Annotated[int, typer.Argument(metavar="ID", help="The job's id.")],
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one job: status, attempts, times, progress and outcome."""
    with _client(url, api_key) as client:
        job = client.get_job(job_id)
    if as_json:
        _print_json(job)
        return
    from interlink.cli import _render_jobs

    _render_jobs.show_job(job)


def list_jobs(
    status: Annotated[
        str | None,
        typer.Option(
            metavar="STATUS", help="Only jobs in this status: queued, running, completed, ..."
        ),
    ] = None,
    pipeline: Annotated[
        str | None, typer.Option(metavar="NAME", help="Only this pipeline's jobs.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="How many jobs to show.")] = 20,
    before: Annotated[
        int | None, typer.Option(min=1, metavar="ID", help="Only jobs older than job ID.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    with _client(url, api_key) as client:
        page = client.list_jobs(status=status, pipeline=pipeline, limit=limit, before=before)
    if as_json:
        _print_json({"items": page.items, "next_before": page.next_before})
        return
    from interlink.cli import _render_jobs

    _render_jobs.show_jobs(page.items, next_before=page.next_before)


def cancel(
    job_id: Annotated[int, typer.Argument(metavar="ID", help="The job's id.")],
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a job: a queued one never runs, a running one stops at its next batch."""
    with _client(url, api_key) as client:
        job = client.cancel_job(job_id)
    if as_json:
        _print_json(job)
        return
    from interlink.cli import _render_jobs

    title = f"Job {job_id} cancelled" if job.get("status") == "cancelled" else None
    _render_jobs.show_job(job, title=title or f"Job {job_id}: cancel requested")


def wait(
    job_id: Annotated[int, typer.Argument(metavar="ID", help="The job's id.")],
    timeout: TimeoutOption = 300.0,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Wait for a job to finish; exit 1 unless it completed."""
    with _client(url, api_key) as client:
        _wait(client, job_id, timeout, as_json)


jobs_app.command("submit")(submit)
jobs_app.command("status")(status)
jobs_app.command("list")(list_jobs)
jobs_app.command("cancel")(cancel)
jobs_app.command("wait")(wait)


def register(app: typer.Typer) -> None:
    """Add the `jobs` command group to `app`."""
    app.add_typer(jobs_app)
