"""Security headers on every answer, and HEAD answered wherever GET is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.headers import API_CSP, PAGE_CSP, SECURITY_HEADERS
from service.embed.backends import Embedder
from tests.helpers import make_settings


@pytest.fixture(scope="module")
def client(built_dir: Path, embedder: Embedder) -> Iterator[TestClient]:
    settings = make_settings(built_dir, max_body_bytes=4096)
    with TestClient(create_app(settings, embedder)) as test_client:
        yield test_client


def _some_id(client: TestClient) -> str:
    return str(client.get("/api/v1/map").json()["ids"][0])


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/api/v1/health", 200),
        ("GET", "/api/v1/search?q=diffusion", 200),
        ("GET", "/api/v1/papers/no-such-paper", 404),
        ("GET", "/api/v1/search?k=0", 422),
        ("POST", "/api/v1/health", 405),
        ("GET", "/static/app.js", 200),
        ("GET", "/metrics", 200),
        ("GET", "/docs", 200),
    ],
)
def test_every_answer_carries_the_security_headers(
    client: TestClient, method: str, path: str, status: int
) -> None:
    answer = client.request(method, path)
    assert answer.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value, name
    policy = answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    if path == "/":
        assert policy == PAGE_CSP
    elif path != "/docs":
        assert policy == API_CSP


def test_a_refused_body_carries_them_too(client: TestClient) -> None:
    big = client.post("/api/v1/recommend", content=b"x" * 10_000)
    assert big.status_code == 413
    assert big.headers["x-content-type-options"] == "nosniff"


def _get_paths(client: TestClient) -> list[str]:
    """Every GET route of the API, with its path parameters filled in."""
    paper_id = _some_id(client)
    values = {"paper_id": paper_id, "topic_id": "0", "group_id": "0", "name": "x"}
    paths = []
    for template, operations in client.get("/openapi.json").json()["paths"].items():
        if "get" in operations:
            paths.append(re.sub(r"\{([^}]+)\}", lambda m: values.get(m[1], "x"), template))
    return [*paths, "/", "/docs", "/openapi.json", "/metrics", "/static/app.js"]


def test_head_is_answered_wherever_get_is(client: TestClient) -> None:
    paths = _get_paths(client)
    assert len(paths) >= 20
    for path in paths:
        params = {"q": "diffusion"} if "search" in path or "recommend" in path else {}
        got = client.get(path, params=params, headers={"Accept-Encoding": "identity"})
        head = client.head(path, params=params, headers={"Accept-Encoding": "identity"})
        assert head.status_code == got.status_code != 405, path
        assert head.content == b"", path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
        if "content-length" in got.headers and path != "/metrics":  # metrics count this GET
            assert head.headers["content-length"] == got.headers["content-length"], path
