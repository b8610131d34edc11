"""Several server processes over one data folder: the same answers, the same writes, the same
switch to a newly published build. Real ``paperscope serve`` processes, one of them with two
uvicorn workers, talking over HTTP."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.embed.backends import Embedder
from service.pipeline.pipeline import run_build
from tests.helpers import make_settings, start_server

pytestmark = pytest.mark.slow  # several server processes

KEY = "test-key"
QUERIES = [
    "/api/v1/search?q=diffusion%20distillation&k=5",
    "/api/v1/search?q=reward%20hacking&k=5&mode=dense",
    "/api/v1/topics",
    "/api/v1/map",
]


def _start(data_dir: Path, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    return start_server(log, data_dir=data_dir, reload_seconds=0.3, api_key=KEY, workers=workers)


def _eventually(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def _status_everywhere(url: str, path: str, status: int) -> bool:
    """Eight answers in a row with this status: with two workers, both have answered."""
    return all(httpx.get(url + path, timeout=10).status_code == status for _ in range(8))


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def servers(built_copy: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Server A with two worker processes and server B with one, over the same data folder."""
    started = [
        _start(built_copy, 2, tmp_path / "a.log"),
        _start(built_copy, 1, tmp_path / "b.log"),
    ]
    try:
        for _, url in started:
            _eventually(lambda url=url: _ready(url), seconds=90)  # type: ignore[misc]
        yield started[0][1], started[1][1]
    finally:
        for process, _ in started:
            process.terminate()
            process.wait(timeout=30)


def _answers(url: str, paths: list[str]) -> list[Any]:
    """The answers, less each error's request id (every request has its own)."""
    answers = [httpx.get(url + path, timeout=10).json() for path in paths]
    for answer in answers:
        if isinstance(answer, dict) and "error" in answer:
            answer["error"].pop("request_id")
    return answers


def _build_id(url: str) -> str:
    return str(httpx.get(f"{url}/api/v1/ready", timeout=5).json()["build_id"])


def test_servers_answer_alike_follow_writes_and_switch_builds(
    servers: tuple[str, str], built_copy: Path, embedder: Embedder
) -> None:
    a, b = servers
    ids = httpx.get(f"{a}/api/v1/map", timeout=10).json()["ids"]
    paths = [*QUERIES, *(f"/api/v1/papers/{i}/similar?k=5" for i in ids[:5])]
    for _ in range(3):  # several requests, so both of A's workers answer some
        assert _answers(a, paths) == _answers(b, paths)

    # A paper added through A is answered by B (and by both of A's workers).
    paper = {
        "id": "live:worker-test",
        "title": "Distilling diffusion models into one-step generators",
        "abstract": "We distil a many-step diffusion model into a one-step image generator "
        "with adversarial and distribution-matching losses.",
    }
    added = httpx.post(
        f"{a}/api/v1/papers", json={"papers": [paper]}, headers={"X-API-Key": KEY}, timeout=60
    )
    assert added.status_code == 200, added.text
    for url in (a, b):
        _eventually(lambda url=url: _status_everywhere(url, "/api/v1/papers/live:worker-test", 200))  # type: ignore[misc]
    # Deleted through B: gone from A as well.
    deleted = httpx.delete(f"{b}/api/v1/papers/{ids[0]}", headers={"X-API-Key": KEY})
    assert deleted.status_code == 204
    for url in (a, b):
        _eventually(lambda url=url: _status_everywhere(url, f"/api/v1/papers/{ids[0]}", 404))  # type: ignore[misc]
    assert _answers(a, paths) == _answers(b, paths)

    # A new build published by `paperscope build` is picked up by both.
    before = _build_id(a)
    _, manifest, made = run_build(
        make_settings(built_copy), lambda: embedder, force=True, progress=False
    )
    assert made and manifest.build_id != before
    for url in (a, b):
        _eventually(lambda url=url: {_build_id(url) for _ in range(8)} == {manifest.build_id})  # type: ignore[misc]
    _eventually(lambda: _answers(a, paths) == _answers(b, paths))
    assert httpx.get(f"{b}/api/v1/papers/live:worker-test").status_code == 200
    assert httpx.get(f"{a}/api/v1/papers/{ids[0]}").status_code == 404
