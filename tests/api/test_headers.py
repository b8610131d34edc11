"""Security headers on every answer."""

from __future__ import annotations

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
