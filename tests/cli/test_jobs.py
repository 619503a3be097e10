"""`interlink jobs ...` through CliRunner, against the fake jobs API on a MockTransport."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from typer.testing import CliRunner

from interlink.cli import _jobs
from interlink.cli.main import app
from interlink.client import JobsClient
from interlink.http import RetryPolicy
from tests.client.fake_api import API_KEY, FakeApi, FakeTime, err, no_jitter


@pytest.fixture
def api(monkeypatch) -> FakeApi:
    fake = FakeApi()
    fake_time = FakeTime()
    made: list[tuple[str, str]] = []

    def make_client(url: str, api_key: str) -> JobsClient:
        made.append((url, api_key))
        return JobsClient(
            url,
            api_key,
            transport=httpx.MockTransport(fake),
            retry_policy=RetryPolicy(jitter=no_jitter),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )

    monkeypatch.setattr(_jobs, "make_client", make_client)
    monkeypatch.setenv("INTERLINK_API_KEY", API_KEY)
    monkeypatch.delenv("INTERLINK_URL", raising=False)
    fake.made = made  # type: ignore[attr-defined]
    fake.time = fake_time  # type: ignore[attr-defined]
    return fake


def invoke(*args: str):
    return CliRunner().invoke(app, ["jobs", *args])


def test_submit_prints_the_job_and_sends_the_options(api):
    result = invoke("submit", "customers", "--full-refresh", "--limit", "5", "--priority", "3")
    assert result.exit_code == 0, result.output
    assert "Job 1 queued" in result.output and "/api/v1/jobs/1" in result.output
    assert api.jobs[1]["args"] == {
        "pipeline": "customers",
        "full_refresh": True,
        "dry_run": False,
        "priority": 3,
        "limit": 5,
    }
    assert api.made == [("http://127.0.0.1:8000", API_KEY)]


def test_submit_sends_the_account(api):
    result = invoke("submit", "customers", "--account", "acct_1001")
    assert result.exit_code == 0, result.output
    assert api.jobs[1]["args"]["account"] == "acct_1001"


def test_url_and_key_from_options_win_over_the_environment(api, monkeypatch):
    monkeypatch.setenv("INTERLINK_URL", "http://env.test:9000")
    invoke("status", "1")
    invoke("status", "1", "--url", "http://flag.test", "--api-key", "other-key-1")
    assert api.made == [("http://env.test:9000", API_KEY), ("http://flag.test", "other-key-1")]


def test_submit_wait_follows_the_job_to_completion(api):
    api.statuses[1] = ["queued", "running", "completed"]
    result = invoke("submit", "customers", "--wait")
    assert result.exit_code == 0, result.output
    assert "Job 1" in result.output and "completed" in result.output
    assert "progress" in result.output and "read" in result.output


def test_wait_exits_1_with_the_reason_when_the_job_failed(api):
    api.add_jobs(1, status="failed", error="RecordError: record 7 (write): duplicate key")
    result = invoke("wait", "1")
    assert result.exit_code == 1
    assert result.stderr.strip() == "job 1 failed: RecordError: record 7 (write): duplicate key"
    assert "duplicate key" in result.stdout


def test_wait_exits_1_when_the_job_was_cancelled(api):
    api.add_jobs(1, status="cancelled")
    result = invoke("wait", "1")
    assert result.exit_code == 1 and result.stderr.strip() == "job 1 cancelled"


def test_wait_timeout_exits_1(api):
    api.add_jobs(1, status="running")
    result = invoke("wait", "1", "--timeout", "2")
    assert result.exit_code == 1
    assert result.stderr.strip() == "job 1: still running after 2 s; the job goes on"
    assert api.time.sleeps == [0.5, 1.0, 0.5]


def test_status_shows_a_panel_and_json(api):
    api.add_jobs(1, status="completed", attempts=1, result={"status": "ok", "counts": {"read": 3}})
    result = invoke("status", "1")
    assert result.exit_code == 0, result.output
    assert "Job 1" in result.output and "completed" in result.output
    assert "1 of 3" in result.output and "read 3" in result.output
    as_json = invoke("status", "1", "--json")
    assert json.loads(as_json.stdout)["status"] == "completed"


def test_list_shows_a_table_and_the_next_page(api):
    api.add_jobs(3)
    api.jobs[2].update(status="failed", error="boom")
    result = invoke("list", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert "failed" in result.output and "boom" in result.output
    assert "More jobs: --before 2" in result.output
    assert api.requests[-1].url.params["limit"] == "2"
    data = json.loads(invoke("list", "--status", "queued", "--json").stdout)
    assert [j["id"] for j in data["items"]] == [3, 1] and data["next_before"] is None


def test_list_with_no_jobs(api):
    result = invoke("list", "--pipeline", "orders")
    assert result.exit_code == 0 and "No jobs." in result.output
    assert api.requests[0].url.params["pipeline"] == "orders"


def test_cancel(api):
    api.add_jobs(1)
    result = invoke("cancel", "1")
    assert result.exit_code == 0, result.output
    assert "Job 1 cancelled" in result.output


def test_cancel_a_finished_job_is_bad_input(api):
    api.add_jobs(1, status="completed")
    result = invoke("cancel", "1")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "[req_err] POST http://127.0.0.1:8000/api/v1/jobs/1/cancel -> 409 (1 attempt): "
        "job 1 has already finished"
    )


def test_an_unknown_job_is_bad_input(api):
    result = invoke("status", "99")
    assert result.exit_code == 2 and "job 99 not found" in result.stderr


def test_a_missing_api_key_is_bad_input(api, monkeypatch):
    monkeypatch.delenv("INTERLINK_API_KEY")
    result = invoke("list")
    assert result.exit_code == 2
    assert result.stderr.strip() == "no API key: pass --api-key or set INTERLINK_API_KEY"
    assert api.made == []


def test_a_refused_key_is_bad_input_and_is_not_printed(api):
    result = invoke("list", "--api-key", "wrong-key-123")
    assert result.exit_code == 2
    assert "invalid or missing API key" in result.stderr
    assert "wrong-key-123" not in result.output


def test_a_validation_error_shows_its_details(api):
    api.script = [
        err(
            422,
            "VALIDATION_ERROR",
            "Invalid input",
            details=[{"field": "pipeline", "issue": "unknown"}],
        )
    ]
    result = invoke("submit", "nope")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("-> 422 (1 attempt): Invalid input (pipeline: unknown)")


def test_a_server_error_exits_1_after_retries(api):
    api.script = [err(503, "INTERNAL_ERROR", "database is locked")] * 4
    result = invoke("status", "1")
    assert result.exit_code == 1
    assert "(4 attempts): database is locked" in result.stderr
    assert api.time.sleeps == [0.5, 1.0, 2.0]


def test_an_unreachable_server_names_the_url(api):
    api.script = [httpx.ConnectError("refused")] * 4
    result = invoke("list")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("; is the server running at http://127.0.0.1:8000?")


def test_a_bad_url_is_bad_input(api):
    result = invoke("list", "--url", "localhost:8000")
    assert result.exit_code == 2 and "http:// or https://" in result.stderr


def test_v_logs_each_request_of_a_jobs_command_with_the_key_masked(api):
    """`-v` on `interlink jobs`: one line per attempt (method, URL, status, time, attempt,
    the retry wait), as a run logs its API's requests; `-vv` adds the headers, the key
    masked. A 503 is retried and both attempts show."""
    from interlink.cli._logging import configure_logging
    from tests.client.fake_api import err as error_response

    api.add_jobs(2)
    api.script.append(error_response(503, "UNAVAILABLE", headers={"Retry-After": "1"}))
    try:
        result = CliRunner().invoke(app, ["jobs", "list", "-v"])
        assert result.exit_code == 0, result.output
        lines = [line for line in result.stderr.splitlines() if "interlink.http:" in line]
        assert len(lines) == 2, result.stderr
        assert re.search(
            r"GET http://127\.0\.0\.1:8000/api/v1/jobs\S* -> 503 in [\d.]+ ms "
            r"\(attempt 1, retrying in 1\.00 s\)",
            lines[0],
        ), lines[0]
        assert re.search(r"-> 200 in [\d.]+ ms \(attempt 2\)$", lines[1]), lines[1]
        assert "> authorization" not in result.stderr.lower()
        result = CliRunner().invoke(app, ["jobs", "-vv", "list"])
        assert result.exit_code == 0, result.output
        assert "> authorization: ***" in result.stderr.lower(), result.stderr
        assert "< http 200" in result.stderr.lower()
        assert API_KEY not in result.stderr + result.stdout
        quiet = CliRunner().invoke(app, ["jobs", "list"])
        assert "interlink.http" not in quiet.stderr
    finally:
        configure_logging(0, None, None)
