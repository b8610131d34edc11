from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.failures import ERRORS, ErrorLog, request_id_from
from service.embed.backends import Embedder
from tests.helpers import assert_error, make_settings


def _broken() -> None:
    raise RuntimeError("Infer Request is busy")


@pytest.fixture(scope="module")
def client(built_dir: Path, embedder: Embedder) -> Iterator[TestClient]:
    """The real app with one more route that always fails, as a shared runtime object did."""
    app = create_app(make_settings(built_dir), embedder)
    app.add_api_route("/api/v1/broken", _broken)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_every_answer_has_a_request_id(client: TestClient) -> None:
    ids = {client.get("/api/v1/health").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3
    given = client.get("/api/v1/health", headers={"X-Request-ID": "proxy-42.a"})
    assert given.headers["x-request-id"] == "proxy-42.a"
    hostile = client.get("/api/v1/health", headers={"X-Request-ID": "x; <script>" * 3})
    assert hostile.headers["x-request-id"].isalnum()


def test_an_error_envelope_names_the_request(client: TestClient) -> None:
    answer = client.get("/api/v1/papers/no-such-paper", headers={"X-Request-ID": "req-1"})
    body = assert_error(answer, 404, "not_found")
    assert body["request_id"] == "req-1"


def test_a_failure_is_a_500_envelope_logged_once_with_one_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        answers = [client.get("/api/v1/broken") for _ in range(3)]
    for answer in answers:
        body = assert_error(answer, 500, "internal_error")
        request_id = answer.headers["x-request-id"]
        assert body["request_id"] == request_id
        assert "Infer Request is busy" not in answer.text  # nothing internal is sent
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(records) == 3, [r.getMessage() for r in records]  # one line a request
    for record, answer in zip(records, answers, strict=True):
        assert answer.headers["x-request-id"] in record.getMessage()
        assert "RuntimeError: Infer Request is busy" in record.getMessage()
    # the traceback once, with the first failure of this kind
    assert records[0].exc_info is not None
    assert all(r.exc_info is None for r in records[1:])


def test_a_flood_of_one_error_is_cut_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    errors = ErrorLog(burst=3, window=3600)
    try:
        _broken()
    except RuntimeError as error:
        failure = error
    with caplog.at_level(logging.ERROR):
        for i in range(10):
            errors.failed(f"r{i}", "GET /x", failure)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "request r0",
        "request r1",
        "request r2",
    ]
    errors.window = 0.0  # a new window: the next line counts what was left out
    with caplog.at_level(logging.ERROR):
        errors.failed("r10", "GET /x", failure)
    assert "(7 more of the same not logged)" in caplog.records[-1].getMessage()


def test_kinds_are_bounded() -> None:
    errors = ErrorLog(kinds=5)
    for i in range(20):
        try:
            exec(compile(f"raise ValueError({i})", f"<kind {i}>", "exec"))  # noqa: S102
        except ValueError as error:
            errors.failed("r", "GET /x", error)
    assert len(errors._kinds) == 5


def test_a_given_request_id_must_be_a_plain_token() -> None:
    assert request_id_from([(b"x-request-id", b"abc-1")]) == "abc-1"
    assert len(request_id_from([(b"x-request-id", b"a" * 65)])) == 16
    assert len(request_id_from([])) == 16
    assert ERRORS.burst >= 1
