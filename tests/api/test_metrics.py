"""GET /metrics (Prometheus text format): requests and latency per route template and status,
the served build and its state; summed over workers with ``serve --workers N``; JSON logs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.api.app import create_app
from service.config import JsonFormatter
from service.embed.backends import Embedder
from tests.helpers import free_port, make_settings, subprocess_env

KEY = "metrics key"
PAPER_ROUTE = "/api/v1/papers/{paper_id:path}"


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(v for got, v in samples.get(name, []) if labels.items() <= got.items())


def test_metrics_count_routes_by_template_and_show_the_served_build(
    built_copy: Path, embedder: Embedder
) -> None:
    with TestClient(create_app(make_settings(built_copy, api_key=KEY), embedder)) as client:
        before = _samples(client.get("/metrics").text)
        ready = client.get("/api/v1/ready").json()
        paper_id = client.get("/api/v1/topics").json()[0]["representative"][0]["id"]
        assert client.get(f"/api/v1/papers/{paper_id}").status_code == 200
        assert client.get("/api/v1/papers/no-such-paper").status_code == 404
        assert client.get("/api/v1/papers/another-missing-one").status_code == 404
        posted = client.post(
            "/api/v1/papers",
            json={"papers": [{"title": "A live paper", "abstract": "Added while serving."}]},
            headers={"X-API-Key": KEY},
        )
        assert posted.status_code == 200
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        after = _samples(response.text)

    def delta(status: str) -> float:
        name = "paperscope_http_requests_total"
        labels = {"route": PAPER_ROUTE, "method": "GET", "status": status}
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("200") == 1 and delta("404") == 2  # one series per template, not per id
    assert _value(after, "paperscope_http_request_seconds_count", route=PAPER_ROUTE) >= 3
    info = after["paperscope_build_info"][0][0]
    assert info["build_id"] == ready["build_id"] and info["model"] == ready["model"]
    assert _value(after, "paperscope_build_papers") == 115
    assert _value(after, "paperscope_papers") == 116
    assert _value(after, "paperscope_live_additions") == 1
    assert _value(after, "paperscope_topics") == ready["topics"]
    stages = {labels["stage"] for labels, _ in after["paperscope_build_stage_seconds"]}
    manifest = json.loads((built_copy / "builds").glob("*/manifest.json").__next__().read_text())
    assert stages == set(manifest["stage_seconds"])


SIMILAR_ROUTE = "/api/v1/papers/{paper_id:path}/similar"


@pytest.mark.parametrize("on", [True, False])
def test_metrics_can_be_switched_off(built_dir: Path, embedder: Embedder, on: bool) -> None:
    """Off: nothing counted, no /metrics; answers keep their id and security headers."""
    with TestClient(create_app(make_settings(built_dir, metrics=on), embedder)) as client:
        before = client.get("/metrics")
        paper_id = client.get("/api/v1/topics").json()[0]["representative"][0]["id"]
        answer = client.get(f"/api/v1/papers/{paper_id}/similar?k=3")
        assert answer.status_code == 200 and len(answer.json()["results"]) == 3
        assert answer.headers["x-request-id"] and answer.headers["x-frame-options"] == "DENY"
        after = client.get("/metrics")
    if not on:
        assert before.status_code == after.status_code == 404
        return
    counted = _value(
        _samples(after.text), "paperscope_http_requests_total", route=SIMILAR_ROUTE, status="200"
    )
    assert (
        counted
        - _value(
            _samples(before.text),
            "paperscope_http_requests_total",
            route=SIMILAR_ROUTE,
            status="200",
        )
        == 1
    )


def test_json_log_lines_are_json_objects() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "paperscope", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed x" and entry["level"] == "ERROR"
    assert entry["logger"] == "paperscope" and "boom" in entry["exception"]
    assert entry["time"].endswith("+00:00")


@pytest.mark.slow
def test_workers_share_metrics_and_log_json(built_copy: Path, tmp_path: Path) -> None:
    port = free_port()
    env = subprocess_env(data_dir=built_copy, workers=2, access_log=True, log_format="json")
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/api/v1/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        for _ in range(40):  # spread over both workers
            assert httpx.get(f"{url}/api/v1/health", timeout=10).status_code == 200
        counts = set()
        for _ in range(6):  # whichever worker answers, it reports every worker's requests
            samples = _samples(httpx.get(f"{url}/metrics", timeout=10).text)
            counts.add(_value(samples, "paperscope_http_requests_total", route="/api/v1/health"))
        assert counts == {40}
    finally:
        process.terminate()
        process.wait(timeout=30)
    # Python's own shutdown warning of the multiprocessing resource tracker is not a log line.
    lines = [
        line
        for line in log.read_text().splitlines()
        if line.strip() and "resource_tracker" not in line and line.strip() != "warnings.warn("
    ]
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
    assert any("/api/v1/health" in json.loads(line)["message"] for line in lines)
