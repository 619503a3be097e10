"""Both clients through httpx.MockTransport: every test runs on JobsClient and on
AsyncJobsClient (the `make_client` fixture), with fake time and jitter switched off."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from interlink.client import JobNotFoundApiError, JobsPage
from interlink.errors import (
    ApiError,
    AuthError,
    ForbiddenError,
    JobNotFoundError,
    JobTimeoutError,
    NotFoundError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    TransportError,
)

from .fake_api import API_KEY, err, ok

# -- envelopes ------------------------------------------------------------------------------


def test_submit_returns_the_envelope_data(client, api):
    submitted = client.submit_job("customers", full_refresh=True, limit=10, priority=5)
    assert submitted == {"job_id": 1, "status": "queued", "status_url": "/api/v1/jobs/1"}
    assert api.jobs[1]["args"] == {
        "pipeline": "customers",
        "full_refresh": True,
        "dry_run": False,
        "priority": 5,
        "limit": 10,
    }


def test_get_list_cancel_and_the_other_routes(client, api):
    api.add_jobs(2)
    assert client.get_job(2)["id"] == 2
    assert client.get_job_status(2)["status"] == "queued"
    page = client.list_jobs(limit=1)
    assert isinstance(page, JobsPage)
    assert [j["id"] for j in page.items] == [2] and page.next_before == 2
    assert client.cancel_job(1)["status"] == "cancelled"
    assert [p["name"] for p in client.list_pipelines()] == ["customers", "orders"]
    assert [r["id"] for r in client.list_runs(pipeline="customers", limit=2)] == [2, 1]
    assert client.get_run(2)["status"] == "completed"
    assert client.health() == {"status": "ok"}
    assert client.app_status("validator")["status"] == "running"
    runs_request = api.requests[-4]
    assert runs_request.url.params["pipeline"] == "customers"


def test_a_non_envelope_success_is_a_clear_error(make_client):
    client = make_client(
        handler=lambda r: httpx.Response(
            200, text="<html>hi</html>", headers={"Content-Type": "text/html"}
        )
    )
    with pytest.raises(ApiError) as caught:
        client.health()
    assert type(caught.value) is ApiError
    assert "HTTP 200 OK (text/html) is not an interlink success envelope" in str(caught.value)
    assert caught.value.body_excerpt == "<html>hi</html>"


def test_data_of_the_wrong_shape_is_a_clear_error(make_client):
    client = make_client(handler=lambda r: ok(["not", "an", "object"]))
    with pytest.raises(ApiError, match="data is not an object"):
        client.get_job(1)


def test_a_redirect_is_not_followed(make_client):
    client = make_client(
        handler=lambda r: httpx.Response(307, headers={"Location": "http://elsewhere/api/v1/jobs"})
    )
    with pytest.raises(ApiError, match="redirecting to http://elsewhere/api/v1/jobs"):
        client.list_jobs()


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "INVALID_REQUEST", RequestRejectedError),
        (401, "UNAUTHORIZED", AuthError),
        (403, "FORBIDDEN", ForbiddenError),
        (404, "NOT_FOUND", NotFoundError),
        (405, "METHOD_NOT_ALLOWED", RequestRejectedError),
        (409, "CONFLICT", RequestRejectedError),
        (413, "PAYLOAD_TOO_LARGE", RequestRejectedError),
        (422, "VALIDATION_ERROR", RequestRejectedError),
        (429, "RATE_LIMITED", RateLimitedError),
        (500, "INTERNAL_ERROR", ServerError),
    ],
)
def test_every_error_code_maps_to_its_class(make_client, fake_time, status, code, cls):
    client = make_client(
        handler=lambda r: err(status, code, "nope", details=[{"field": "x", "issue": "bad"}]),
        max_retries=0,
    )
    with pytest.raises(cls) as caught:
        client.list_runs()
    error = caught.value
    assert type(error) is cls
    assert error.error_code == code
    assert error.details == [{"field": "x", "issue": "bad"}]
    assert error.status_code == status
    assert error.request_id == "req_err"
    assert error.method == "GET"
    assert error.url == "http://jobs.test/api/v1/runs"
    assert error.attempts == 1
    assert str(error).startswith(f"[req_err] GET http://jobs.test/api/v1/runs -> {status} ")
    assert fake_time.sleeps == []


def test_a_404_on_a_job_route_is_both_not_found_errors(client):
    with pytest.raises(JobNotFoundApiError) as caught:
        client.get_job(42)
    error = caught.value
    assert isinstance(error, NotFoundError) and isinstance(error, JobNotFoundError)
    assert error.job_id == 42 and error.status_code == 404 and error.error_code == "NOT_FOUND"
    assert "job_id=42" in repr(error)
    with pytest.raises(JobNotFoundError):
        client.cancel_job(42)


def test_cancelling_a_finished_job_is_a_conflict(client, api):
    api.add_jobs(1, status="completed")
    with pytest.raises(RequestRejectedError) as caught:
        client.cancel_job(1)
    assert caught.value.error_code == "CONFLICT" and caught.value.status_code == 409


def test_a_proxy_html_502_still_gives_a_clear_error(make_client, api):
    api.script = [
        httpx.Response(
            502, text="<html><h1>502 Bad Gateway</h1></html>", headers={"Content-Type": "text/html"}
        )
    ] * 4
    client = make_client()
    with pytest.raises(ServerError) as caught:
        client.health()
    error = caught.value
    assert error.error_code is None and error.attempts == 4
    assert error.message == (
        "HTTP 502 Bad Gateway, not from the interlink API (text/html body, no error envelope)"
    )
    assert "502 Bad Gateway" in (error.body_excerpt or "")


def test_a_request_id_from_the_header_when_the_body_has_none(make_client):
    client = make_client(
        handler=lambda r: httpx.Response(403, text="denied", headers={"X-Request-ID": "req_hdr"})
    )
    with pytest.raises(ForbiddenError) as caught:
        client.health()
    assert caught.value.request_id == "req_hdr"


def test_the_api_key_never_shows(make_client, api):
    # A careless server echoes the key it refused, in the message, details and body.
    echo = err(
        401,
        "UNAUTHORIZED",
        f"unknown key {API_KEY}",
        details=[{"field": "authorization", "issue": f"Bearer {API_KEY} is revoked"}],
    )
    client = make_client(handler=lambda r: echo)
    with pytest.raises(AuthError) as caught:
        client.get_job(1)
    error = caught.value
    for text in (str(error), repr(error), error.message, error.body_excerpt or "", repr(client)):
        assert API_KEY not in text
    assert "unknown key ***" in str(error)

    failing = make_client(handler=_raise(httpx.ConnectError(f"refused {API_KEY}")), max_retries=0)
    with pytest.raises(TransportError) as caught_transport:
        failing.health()
    assert API_KEY not in str(caught_transport.value) + repr(caught_transport.value)
    assert caught_transport.value.__cause__ is None  # the httpx error holds the headers


def test_a_wrong_key_is_an_auth_error(make_client):
    client = make_client(api_key="wrong-key-0000")
    with pytest.raises(AuthError, match="invalid or missing API key"):
        client.list_jobs()


# -- retries --------------------------------------------------------------------------------


def _raise(exc: Exception):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def test_5xx_is_retried_with_exact_backoff_then_succeeds(client, api, fake_time):
    api.add_jobs(1)
    api.script = [err(503, "INTERNAL_ERROR"), err(500, "INTERNAL_ERROR"), err(502, "X")]
    assert client.get_job(1)["id"] == 1
    assert fake_time.sleeps == [0.5, 1.0, 2.0]
    assert len(api.requests) == 4


def test_5xx_exhausting_retries_reraises_with_attempts(make_client, api, fake_time):
    api.script = [err(500, "INTERNAL_ERROR", "boom")] * 3
    client = make_client(max_retries=2)
    with pytest.raises(ServerError) as caught:
        client.health()
    assert caught.value.attempts == 3 and caught.value.retryable
    assert "(3 attempts): boom" in str(caught.value)
    assert fake_time.sleeps == [0.5, 1.0]


def test_connection_errors_are_retried_then_raised_as_transport_error(make_client, fake_time):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    client = make_client(handler=handler)
    with pytest.raises(TransportError) as caught:
        client.list_jobs()
    assert len(calls) == 4 and fake_time.sleeps == [0.5, 1.0, 2.0]
    error = caught.value
    assert error.attempts == 4 and error.method == "GET"
    assert error.url == "http://jobs.test/api/v1/jobs"
    assert "ConnectError: cannot connect to jobs.test:80: connection refused" in str(error)


def test_a_read_timeout_then_success(client, api, fake_time):
    api.script = [httpx.ReadTimeout("slow")]
    assert client.health() == {"status": "ok"}
    assert fake_time.sleeps == [0.5]


def test_a_retried_submit_keeps_its_idempotency_key_and_makes_one_job(client, api, fake_time):
    original = api.route
    sent = []

    def route(request: httpx.Request) -> Any:
        sent.append(request)
        response = original(request)
        if len(sent) == 1:
            # The first POST made the job, but its answer was lost on the way back.
            raise httpx.ReadError("connection reset", request=request)
        if len(sent) == 2:
            return err(503, "INTERNAL_ERROR")
        return response

    api.route = route
    submitted = client.submit_job("customers")
    keys = {r.headers["idempotency-key"] for r in api.requests}
    assert len(api.requests) == 3 and len(keys) == 1
    assert submitted["job_id"] == 1 and list(api.jobs) == [1]
    assert fake_time.sleeps == [0.5, 1.0]


def test_each_submit_gets_its_own_key_unless_given(client, api):
    client.submit_job("customers")
    client.submit_job("customers")
    client.submit_job("orders", idempotency_key="nightly-2025-11-24")
    again = client.submit_job("orders", idempotency_key="nightly-2025-11-24")
    keys = [r.headers["idempotency-key"] for r in api.requests]
    assert len(set(keys[:2])) == 2 and keys[2:] == ["nightly-2025-11-24"] * 2
    assert again["job_id"] == 3 and len(api.jobs) == 3


def test_429_retry_after_is_slept_then_the_request_goes_again(client, api, fake_time):
    api.script = [err(429, "RATE_LIMITED", headers={"Retry-After": "3"})]
    client.submit_job("customers")
    assert fake_time.sleeps == [3.0]
    assert len(api.requests) == 2


def test_429_retry_after_as_http_date(client, api, fake_time):
    # fake wall clock: 1_800_000_000 = Fri, 15 Jan 2027 08:00:00 GMT
    api.script = [
        err(429, "RATE_LIMITED", headers={"Retry-After": "Fri, 15 Jan 2027 08:00:12 GMT"})
    ]
    client.health()
    assert fake_time.sleeps == [12.0]


def test_429_retry_after_beyond_the_cap_is_raised_at_once(client, api, fake_time):
    api.script = [err(429, "RATE_LIMITED", "slow down", headers={"Retry-After": "120"})]
    with pytest.raises(RateLimitedError) as caught:
        client.list_jobs()
    assert caught.value.retry_after == 120.0 and caught.value.attempts == 1
    assert fake_time.sleeps == [] and len(api.requests) == 1


def test_429_without_retry_after_backs_off(client, api, fake_time):
    api.script = [err(429, "RATE_LIMITED"), err(429, "RATE_LIMITED")]
    client.health()
    assert fake_time.sleeps == [0.5, 1.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_other_4xx_are_never_retried(client, api, fake_time, status):
    api.script = [err(status, "X")] * 5
    with pytest.raises(ApiError):
        client.submit_job("customers")
    assert len(api.requests) == 1 and fake_time.sleeps == []


def test_max_retries_zero_sends_once(make_client, api, fake_time):
    api.script = [err(503, "INTERNAL_ERROR")]
    with pytest.raises(ServerError):
        make_client(max_retries=0).health()
    assert len(api.requests) == 1 and fake_time.sleeps == []


# -- waiting --------------------------------------------------------------------------------


def test_wait_for_job_polls_with_backoff_until_done(client, api, fake_time):
    api.add_jobs(1)
    api.statuses[1] = ["queued", "running", "running", "running", "completed"]
    seen: list[dict[str, object]] = []
    done = client.wait_for_job(1, poll_interval=0.5, max_interval=2, on_update=seen.append)
    assert done["status"] == "completed"
    assert [j["status"] for j in seen] == ["queued", "running", "running", "running", "completed"]
    assert fake_time.sleeps == [0.5, 1.0, 2.0, 2.0]


def test_wait_for_job_returns_a_failed_job(client, api):
    api.add_jobs(1, status="failed", error="boom")
    assert client.wait_for_job(1)["error"] == "boom"


def test_wait_for_job_times_out(client, api, fake_time):
    api.add_jobs(1, status="running")
    with pytest.raises(JobTimeoutError) as caught:
        client.wait_for_job(1, timeout=3, poll_interval=0.5, max_interval=1)
    assert caught.value.job_id == 1
    assert fake_time.sleeps == [0.5, 1.0, 1.0, 0.5]
    assert len(api.requests) == 5  # the last poll is at the deadline


def test_wait_for_a_missing_job(client):
    with pytest.raises(JobNotFoundError):
        client.wait_for_job(7)


def test_wait_survives_a_transient_5xx(client, api, fake_time):
    api.add_jobs(1)
    api.statuses[1] = ["completed"]
    api.script = [ok(api.jobs[1] | {"status": "running"}), err(503, "INTERNAL_ERROR")]
    assert client.wait_for_job(1, poll_interval=1, max_interval=1)["status"] == "completed"
    assert fake_time.sleeps == [1.0, 0.5]


# -- pages ----------------------------------------------------------------------------------


def test_iter_jobs_walks_every_page(client, api):
    api.add_jobs(7)
    ids = [j["id"] for j in client.iter_jobs(page_size=3)]
    assert ids == [7, 6, 5, 4, 3, 2, 1]
    befores = [r.url.params.get("before") for r in api.requests]
    assert befores == [None, "5", "2"]
    pages = list(client.iter_pages(page_size=3))
    assert [len(p) for p in pages] == [3, 3, 1] and not pages[-1].has_more


def test_iter_jobs_passes_filters_and_stops_on_an_empty_page(client, api):
    assert list(client.iter_jobs(status="failed")) == []
    assert api.requests[0].url.params["status"] == "failed"


def test_a_cursor_that_does_not_move_ends_the_walk(make_client):
    client = make_client(handler=lambda r: ok([{"id": 9}], next_before=9))
    assert [j["id"] for j in client.iter_jobs()] == [9, 9]


def test_a_resent_cancel_that_meets_409_returns_the_job_the_first_attempt_cancelled(
    client, api, fake_time
):
    api.add_jobs(1)
    original = api.route

    def route(request: httpx.Request) -> Any:
        response = original(request)
        if request.url.path.endswith("/cancel") and len(api.requests) == 1:
            raise httpx.ReadError("connection reset", request=request)
        return response

    api.route = route
    assert client.cancel_job(1)["status"] == "cancelled"
    assert [r.method for r in api.requests] == ["POST", "POST", "GET"]


def test_a_first_time_409_on_cancel_is_raised(client, api):
    api.add_jobs(1, status="failed")
    with pytest.raises(RequestRejectedError):
        client.cancel_job(1)
    assert len(api.requests) == 1
