"""Every error in the one envelope with its stable code, and the request id on everything."""

from __future__ import annotations

import logging
import re

import pytest

from .conftest import API, assert_error, assert_meta


async def test_every_answer_carries_a_generated_request_id(api):
    ok = await api.get("/jobs")
    assert re.fullmatch(r"req_[0-9a-f]{20}", ok.headers["x-request-id"])
    assert_meta(ok.json(), ok)
    other = await api.get("/jobs")
    assert other.headers["x-request-id"] != ok.headers["x-request-id"]
    unauthorized = await api.client.get(f"{API}/jobs")
    assert_meta(unauthorized.json(), unauthorized)


async def test_a_sane_incoming_request_id_is_kept_and_anything_else_replaced(api):
    kept = await api.get("/jobs", headers={"X-Request-ID": "trace-7f3a.01:b"})
    assert kept.headers["x-request-id"] == "trace-7f3a.01:b"
    assert kept.json()["meta"]["request_id"] == "trace-7f3a.01:b"
    for bad in ("has space", "x" * 200, "<script>", "-leading-dash"):
        replaced = await api.get("/jobs", headers={"X-Request-ID": bad})
        assert replaced.headers["x-request-id"].startswith("req_"), bad


async def test_unknown_routes_are_404_in_the_envelope(api):
    assert_error(await api.get("/nothing/here"), 404, "NOT_FOUND")
    assert_error(await api.client.get("/not-the-api"), 404, "NOT_FOUND")


async def test_wrong_method_is_405_with_allow(api):
    response = await api.client.put(f"{API}/jobs/1", headers=api.auth())
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, HEAD"
    response = await api.client.delete(f"{API}/jobs", headers=api.auth())
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}


async def test_malformed_json_and_wrong_content_type_are_400(api):
    headers = {"Content-Type": "application/json"}
    response = await api.post("/jobs", content=b'{"pipeline": ', headers=headers)
    error = assert_error(response, 400, "INVALID_REQUEST")
    assert error["details"][0]["field"] == "body"
    response = await api.post(
        "/jobs", content=b"pipeline=customers", headers={"Content-Type": "text/plain"}
    )
    error = assert_error(response, 400, "INVALID_REQUEST")
    assert "application/json" in error["message"]
    response = await api.post("/jobs", content=b'{"pipeline": "customers"}')  # no content type
    assert_error(response, 400, "INVALID_REQUEST")
    assert (await api.get("/jobs")).json()["data"] == []


async def test_bodies_over_the_limit_are_413_and_never_parsed(make_api):
    api = await make_api(server={"max_body": "1KiB"})
    body = b'{"pipeline": "customers", "kind": "pipeline.run"' + b" " * 1024 + b"}"
    assert len(body) == 1024 + 49
    headers = {"Content-Type": "application/json"}
    error = assert_error(
        await api.post("/jobs", content=body, headers=headers), 413, "PAYLOAD_TOO_LARGE"
    )
    assert "1024" in error["message"]

    async def chunks(data: bytes):
        for start in range(0, len(data), 100):
            yield data[start : start + 100]

    # No Content-Length: the body is counted as it streams in.
    response = await api.post("/jobs", content=chunks(body), headers=headers)
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert (await api.get("/jobs")).json()["data"] == []

    exactly = b'{"pipeline": "customers"' + b" " * (1024 - 25) + b"}"
    assert len(exactly) == 1024
    assert (await api.post("/jobs", content=exactly, headers=headers)).status_code == 202
    assert (await api.post("/jobs", content=chunks(exactly), headers=headers)).status_code == 202


async def test_a_failing_route_is_500_without_the_exception_text(api, monkeypatch, caplog):
    def broken(job_id):
        raise RuntimeError("connection string postgresql://admin:SECRET@db failed")

    monkeypatch.setattr(api.queue, "get", broken)
    with caplog.at_level(logging.ERROR, logger="interlink.server"):
        response = await api.get("/jobs/1")
    error = assert_error(response, 500, "INTERNAL_ERROR")
    rid = response.headers["x-request-id"]
    assert rid in error["message"]
    assert "SECRET" not in response.text and "RuntimeError" not in response.text
    assert error["details"] == []
    logged = [r for r in caplog.records if rid in r.getMessage()]
    assert logged and logged[0].exc_info is not None


async def test_health_is_503_when_the_database_is_unreachable(api, monkeypatch, caplog):
    def down():
        raise OSError("database is down")

    monkeypatch.setattr(api.store.engine, "connect", down)
    with caplog.at_level(logging.ERROR, logger="interlink.server"):
        response = await api.client.get(f"{API}/health")
    error = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert error["details"] == [{"field": "database", "issue": "unreachable"}]
    assert "down" not in response.text


@pytest.mark.parametrize("path", ["/jobs/1", "/runs/1", "/apps/nope/status"])
async def test_not_found_objects_name_what_is_missing(api, path):
    assert_error(await api.get(path), 404, "NOT_FOUND")


async def test_a_huge_streamed_body_is_cut_off_at_the_limit(api):
    """OWASP API4 (RELIABILITY A3): 64 MiB offered, about 1 MiB read, memory flat."""
    import psutil

    chunk = b" " * 65536
    pulled = 0

    async def endless():
        nonlocal pulled
        yield b'{"kind": "noop", "pipeline": "customers"'
        for _ in range(1024):  # 64 MiB
            pulled += 1
            yield chunk

    process = psutil.Process()
    before = process.memory_info().rss
    response = await api.post(
        "/jobs", content=endless(), headers={"Content-Type": "application/json"}
    )
    grown = process.memory_info().rss - before
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    limit = api.config.server.max_body
    assert pulled <= limit // len(chunk) + 1  # 17 of 1,024 chunks: the rest never read
    assert grown < 16 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB"
    assert (await api.get("/jobs")).json()["data"] == []


def test_a_request_id_ending_in_a_line_break_is_not_sane():
    """`$` in a pattern matches before a final newline: an id that ends in one passed the
    check and would have been written into an answer's head (the webhook receiver writes
    its heads itself)."""
    from interlink.server._envelope import sane_request_id

    assert sane_request_id("trace-1")
    for bad in ("trace-1\n", "trace-1\r\n", "\ntrace", "a" * 129, ""):
        assert not sane_request_id(bad), repr(bad)
