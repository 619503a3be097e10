"""The sans-I/O core on real httpx objects: no transport, no clock, no sleep."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, strategies as st

from interlink.client import JobsPage, WaitPlan, api_base_url
from interlink.client._core import ApiCore, Call, next_cursor
from interlink.errors import JobTimeoutError
from interlink.http import RetryPolicy

from .fake_api import API_KEY, err, no_jitter, ok


def core(**kwargs) -> ApiCore:
    return ApiCore(
        "http://jobs.test", API_KEY, retry_policy=RetryPolicy(jitter=no_jitter), **kwargs
    )


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/api/v1"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/api/v1"),
        ("https://jobs.example.com/api/v1/", "https://jobs.example.com/api/v1"),
        ("https://example.com/interlink", "https://example.com/interlink/api/v1"),
    ],
)
def test_api_base_url(given_url, expected):
    assert api_base_url(given_url) == expected


def test_api_base_url_needs_a_scheme():
    with pytest.raises(ValueError, match="http:// or https://"):
        api_base_url("127.0.0.1:8000")


def test_an_api_key_is_required():
    with pytest.raises(ValueError, match="API key"):
        ApiCore("http://jobs.test", "")


def test_submit_request_has_auth_json_body_and_a_fresh_idempotency_key():
    c = core()
    first = c.build_request(c.submit_job("customers", limit=5, kind="noop"))
    second = c.build_request(c.submit_job("customers"))
    assert first.method == "POST"
    assert str(first.url) == "http://jobs.test/api/v1/jobs"
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["accept"] == "application/json"
    assert json.loads(first.content) == {
        "pipeline": "customers",
        "full_refresh": False,
        "dry_run": False,
        "priority": 0,
        "limit": 5,
        "kind": "noop",
    }
    assert first.headers["idempotency-key"] != second.headers["idempotency-key"]
    assert len(first.headers["idempotency-key"]) == 36  # a uuid4


def test_list_request_drops_unset_filters():
    c = core()
    request = c.build_request(c.list_jobs(status="failed", limit=10))
    assert request.url.params == httpx.QueryParams({"status": "failed", "limit": "10"})
    assert "idempotency-key" not in request.headers


def test_job_ids_must_be_ints():
    with pytest.raises(TypeError):
        core().get_job("5")  # type: ignore[arg-type]


def _response(call: Call[Any], response: httpx.Response) -> httpx.Response:
    response.request = core().build_request(call)
    return response


@pytest.mark.parametrize(
    ("status", "method", "retried"),
    [
        (500, "GET", True),
        (502, "GET", True),
        (503, "GET", True),
        (504, "GET", True),
        (500, "POST submit", True),  # carries an Idempotency-Key
        (503, "POST cancel", True),  # cancelling twice asks for the same thing
        (429, "GET", True),
        (400, "GET", False),
        (401, "GET", False),
        (403, "GET", False),
        (404, "GET", False),
        (409, "POST cancel", False),
        (413, "POST submit", False),
        (422, "POST submit", False),
    ],
)
def test_which_statuses_are_retried(status, method, retried):
    c = core()
    call = {
        "GET": c.get_job(1),
        "POST submit": c.submit_job("customers"),
        "POST cancel": c.cancel_job(1),
    }[method]
    request = c.build_request(call)
    response = httpx.Response(status, request=request)
    delay = c.retry_delay_for_response(call, request, response, 1, now=0.0)
    assert (delay is not None) is retried


def test_backoff_doubles_from_base_and_stops_after_max_retries():
    c = core(max_retries=3)
    call = c.get_job(1)
    request = c.build_request(call)
    response = httpx.Response(503, request=request)
    delays = [c.retry_delay_for_response(call, request, response, n, now=0.0) for n in (1, 2, 3, 4)]
    assert delays == [0.5, 1.0, 2.0, None]


def test_retry_after_seconds_and_dates_win_over_backoff():
    c = core()
    call = c.get_job(1)
    request = c.build_request(call)
    seconds = httpx.Response(429, headers={"Retry-After": "7"}, request=request)
    date = httpx.Response(
        503, headers={"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"}, request=request
    )
    too_long = httpx.Response(429, headers={"Retry-After": "3600"}, request=request)
    assert c.retry_delay_for_response(call, request, seconds, 1, now=0.0) == 7.0
    assert c.retry_delay_for_response(call, request, date, 1, now=1_767_225_600.0) == 30.0
    assert c.retry_delay_for_response(call, request, too_long, 1, now=0.0) is None


def test_transport_failures_retried_when_safe():
    c = core()
    get = c.get_job(1)
    post = c.cancel_job(1)
    get_request, post_request = c.build_request(get), c.build_request(post)
    read_error = httpx.ReadError("reset", request=get_request)
    assert c.retry_delay_for_exception(get, get_request, read_error, 1) == 0.5
    assert c.retry_delay_for_exception(post, post_request, read_error, 2) == 1.0
    assert c.retry_delay_for_exception(get, get_request, read_error, 4) is None
    bad = httpx.UnsupportedProtocol("ftp?", request=get_request)
    assert c.retry_delay_for_exception(get, get_request, bad, 1) is None


def test_parse_reads_data_and_meta_cursor():
    c = core()
    call = c.list_jobs()
    page = c.parse(call, _response(call, ok([{"id": 3}], next_before=3)), 1)
    assert page == JobsPage(items=[{"id": 3}], next_before=3, meta=page.meta)
    assert page.meta["request_id"] == "req_test"
    assert page.has_more and len(page) == 1 and list(page) == [{"id": 3}]


def test_an_error_carries_the_envelope():
    c = core()
    call = c.submit_job("customers", limit=0)
    response = _response(
        call,
        err(
            422,
            "VALIDATION_ERROR",
            "Invalid input parameters",
            details=[{"field": "limit", "issue": "must be at least 1"}],
            request_id="req_abc",
        ),
    )
    error = c.error(call, response, attempts=1)
    assert error.error_code == "VALIDATION_ERROR"
    assert error.details == [{"field": "limit", "issue": "must be at least 1"}]
    assert error.request_id == "req_abc"
    assert str(error) == (
        "[req_abc] POST http://jobs.test/api/v1/jobs -> 422 (1 attempt): "
        "Invalid input parameters (limit: must be at least 1)"
    )


def test_the_meta_request_id_wins_over_the_header():
    c = core()
    call = c.get_job(1)
    response = err(500, "INTERNAL_ERROR", request_id="req_meta")
    response.headers["X-Request-ID"] = "req_header"
    error = c.error(call, _response(call, response), attempts=1)
    assert error.request_id == "req_meta"


def test_wait_plan_doubles_up_to_the_cap_and_times_out_at_the_deadline():
    plan = WaitPlan(9, timeout=3, poll_interval=0.5, max_interval=1, started=0.0)
    running = {"status": "running"}
    now, delays = 0.0, []
    with pytest.raises(JobTimeoutError) as caught:
        while (delay := plan.next_delay(running, now)) is not None:
            delays.append(delay)
            now += delay
    assert delays == [0.5, 1.0, 1.0, 0.5]
    assert caught.value.job_id == 9
    assert str(caught.value) == "job 9: still running after 3 s; the job goes on"


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_wait_plan_stops_on_a_terminal_status(status):
    plan = WaitPlan(1, timeout=0, poll_interval=1, max_interval=1, started=0.0)
    assert plan.next_delay({"status": status}, 100.0) is None


def test_wait_plan_without_timeout_never_gives_up():
    plan = WaitPlan(1, timeout=None, poll_interval=1, max_interval=4, started=0.0)
    assert [plan.next_delay({"status": "queued"}, 1e9) for _ in range(4)] == [1, 2, 4, 4]


@pytest.mark.parametrize(
    "kwargs", [{"poll_interval": 0}, {"poll_interval": 2, "max_interval": 1}, {"timeout": -1}]
)
def test_wait_plan_rejects_nonsense(kwargs):
    options = {"timeout": 1.0, "poll_interval": 0.5, "max_interval": 5.0, **kwargs}
    with pytest.raises(ValueError):
        WaitPlan(1, started=0.0, **options)


@given(
    ids=st.lists(st.integers(1, 10_000), min_size=0, max_size=5),
    cursor=st.none() | st.integers(1, 10_000),
    before=st.none() | st.integers(1, 10_000),
)
def test_next_cursor_always_moves_down_or_ends(ids, cursor, before):
    page = JobsPage(items=[{"id": i} for i in ids], next_before=cursor)
    nxt = next_cursor(page, before)
    if nxt is not None:
        assert ids and (before is None or nxt < before)
