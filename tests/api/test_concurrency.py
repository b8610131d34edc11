"""Many users at once, on every embedding backend: a real ``paperscope serve`` process gets text
searches, topic searches and recommendations from text from 16 threads at once, and each must
be answered 200 with the answer it gets alone (a runtime object shared between the server's
threads once failed most of these with "Infer Request is busy")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.embed.backends import Embedder, load_embedder
from service.pipeline.pipeline import run_build
from tests.helpers import make_settings, start_server

pytestmark = pytest.mark.slow  # a server process and a build per backend

BACKENDS = ["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"]
THREADS = 16
TEXTS = [
    "diffusion models for video",
    "reward hacking in reinforcement learning from human feedback",
    "knowledge distillation",
    "speech recognition",
    "multimodal reasoning benchmarks",
    "graph neural networks",
    "hallucination in vision-language models",
    "efficient attention for long context",
]


def _requests() -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, JSON body) for each text: search, topic search, recommend from text."""
    asked: list[tuple[str, str, dict[str, Any] | None]] = []
    for text in TEXTS:
        asked.append(("GET", f"/api/v1/search?k=5&q={text}", None))
        asked.append(("GET", f"/api/v1/topics/search?k=3&q={text}", None))
        asked.append(("POST", "/api/v1/recommend", {"positive": [{"text": text}], "limit": 5}))
    return asked


def _ask(url: str, request: tuple[str, str, dict[str, Any] | None]) -> tuple[int, Any]:
    method, path, body = request
    answer = httpx.request(method, url + path, json=body, timeout=60)
    return answer.status_code, answer.json()


@pytest.fixture
def data_dir(request: pytest.FixtureRequest, built_copy: Path, tmp_path: Path) -> Path:
    """A build whose vectors the backend reads: the default build for the backends that share
    the torch vectors' identity, a build of its own for the int8 ones."""
    backend = request.param
    embedder: Embedder = load_embedder(make_settings(tmp_path, backend=backend))
    if embedder.cache_key == load_embedder(make_settings(tmp_path)).cache_key:
        return built_copy
    own = tmp_path / "own"
    run_build(make_settings(own, backend=backend), lambda: embedder, progress=False)
    return own


@pytest.fixture
def server(request: pytest.FixtureRequest, data_dir: Path, tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "server.log"
    process, url = start_server(log, data_dir=data_dir, backend=request.param)
    try:
        deadline = time.monotonic() + 120
        while not _ready(url):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "not ready in 120 s"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Traceback" not in log.read_text(errors="replace")


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize(("data_dir", "server"), [(b, b) for b in BACKENDS], indirect=True)
def test_concurrent_text_queries_all_answer_as_alone(server: str) -> None:
    asked = _requests()
    alone = [_ask(server, request) for request in asked]
    assert all(status == 200 for status, _ in alone), alone
    rounds = 4  # each request 4 times, all of them from 16 threads at once
    with ThreadPoolExecutor(THREADS) as pool:
        indices = range(rounds * len(asked))
        together = list(pool.map(lambda i: _ask(server, asked[i % len(asked)]), indices))
    statuses = [status for status, _ in together]
    assert statuses == [200] * len(together)
    for i, (_, body) in enumerate(together):
        assert _ids(body) == _ids(alone[i % len(asked)][1])


def _ids(body: Any) -> list[str]:
    """The ids answered, in order, whatever the route (search and recommend: papers; topic
    search: topics)."""
    rows = body["results"] if isinstance(body, dict) else body
    return [str(row["id"]) for row in rows]
