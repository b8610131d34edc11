"""Switching builds while serving: hot swap on publish, rollback (``paperscope builds use``),
fallback from a damaged build."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.artifacts import current_build_dir, read_manifest, use_build
from service.embed.backends import Embedder
from service.pipeline.pipeline import run_build
from service.query.serving import BuildWatcher
from tests.helpers import free_port, make_settings, run, subprocess_env


def test_watcher_switches_to_a_newly_published_build(built_copy: Path, embedder: Embedder) -> None:
    settings = make_settings(built_copy)
    watcher = BuildWatcher(settings.builds_dir, embedder, reload_seconds=0)
    watcher.start()
    assert watcher.engine is not None
    first = watcher.engine.build_dir
    assert not watcher.refresh()  # nothing new
    folder, _, _ = run_build(settings, lambda: embedder, force=True, progress=False)
    assert watcher.refresh()
    assert watcher.engine.build_dir == folder != first


def test_damaged_published_build_falls_back_to_the_previous_one(
    built_copy: Path, embedder: Embedder
) -> None:
    settings = make_settings(built_copy)
    older = current_build_dir(settings.builds_dir)
    newer, _, _ = run_build(settings, lambda: embedder, force=True, progress=False)
    index = newer / "index.faiss"
    index.write_bytes(index.read_bytes()[:100])  # truncated on disk
    with TestClient(create_app(settings, embedder)) as client:
        ready = client.get("/api/v1/ready").json()
        assert older is not None
        assert ready["build_id"] == older.name
        assert "damaged" in ready["note"]
        assert client.get("/api/v1/search", params={"q": "diffusion"}).status_code == 200


def test_publishing_under_load_fails_no_request(built_copy: Path, embedder: Embedder) -> None:
    """Requests keep succeeding while a new build is published and picked up."""
    settings = make_settings(built_copy, reload_seconds=0.1)
    failures: list[int] = []
    seen: set[str] = set()
    with TestClient(create_app(settings, embedder)) as client:
        paper_id = client.get("/api/v1/topics").json()[0]["representative"][0]["id"]
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                for path in (f"/api/v1/papers/{paper_id}/similar?k=5", "/api/v1/ready"):
                    response = client.get(path)
                    if response.status_code != 200:
                        failures.append(response.status_code)
                    elif path.endswith("ready"):
                        seen.add(response.json()["build_id"])

        workers = [threading.Thread(target=hammer) for _ in range(4)]
        for worker in workers:
            worker.start()
        folder, _, _ = run_build(settings, lambda: embedder, force=True, progress=False)
        deadline = time.monotonic() + 20
        while folder.name not in seen and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for worker in workers:
            worker.join()
    assert not failures
    assert folder.name in seen and len(seen) == 2


def test_unreadable_manifest_falls_back_too(built_copy: Path, embedder: Embedder) -> None:
    settings = make_settings(built_copy)
    older = current_build_dir(settings.builds_dir)
    newer, _, _ = run_build(settings, lambda: embedder, force=True, progress=False)
    (newer / "manifest.json").write_text("{ not json")
    watcher = BuildWatcher(settings.builds_dir, embedder, reload_seconds=0)
    watcher.start()
    assert watcher.engine is not None and older is not None
    assert watcher.engine.build_dir == older
    assert watcher.note is not None and "damaged" in watcher.note


def test_watcher_follows_a_rollback_to_an_older_build(built_copy: Path, embedder: Embedder) -> None:
    settings = make_settings(built_copy)
    older = current_build_dir(settings.builds_dir)
    newer, _, _ = run_build(settings, lambda: embedder, force=True, progress=False)
    watcher = BuildWatcher(settings.builds_dir, embedder, reload_seconds=0)
    watcher.start()
    assert watcher.engine is not None and watcher.engine.build_dir == newer
    assert older is not None
    use_build(settings.builds_dir, older.name)
    assert watcher.refresh()
    assert watcher.engine.build_dir == older
    use_build(settings.builds_dir, newer.name)
    assert watcher.refresh()
    assert watcher.engine.build_dir == newer


@pytest.mark.slow
def test_a_running_server_follows_builds_use(built_copy: Path, embedder: Embedder) -> None:
    """`paperscope builds use` back to the older build, then forward again: a real
    `python -m service serve` process serves each within its reload interval."""
    settings = make_settings(built_copy)
    older = current_build_dir(settings.builds_dir)
    newer, _, _ = run_build(settings, lambda: embedder, force=True, progress=False)
    assert older is not None
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1"
    server = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=subprocess_env(data_dir=built_copy, reload_seconds=0.3),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def serving() -> str | None:
        try:
            ready = httpx.get(f"{url}/ready", timeout=5)
        except httpx.HTTPError:
            return None
        return str(ready.json()["build_id"]) if ready.status_code == 200 else None

    def eventually_serving(build: Path) -> None:
        deadline = time.monotonic() + 90
        while serving() != build.name:
            assert server.poll() is None, "the server ended"
            assert time.monotonic() < deadline, f"the server never served {build.name}"
            time.sleep(0.2)
        search = httpx.get(f"{url}/search", params={"q": "diffusion"}, timeout=30)
        assert search.status_code == 200

    try:
        eventually_serving(newer)
        for build in (older, newer):
            switched = run("builds", "use", build.name, data_dir=built_copy)
            assert switched.returncode == 0, switched.stderr
            eventually_serving(build)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_build_without_checksums_is_served_with_a_note(
    built_copy: Path, embedder: Embedder
) -> None:
    settings = make_settings(built_copy)
    build = current_build_dir(settings.builds_dir)
    assert build is not None
    manifest = read_manifest(build).model_copy(update={"checksums": {}})  # as before checksums
    (build / "manifest.json").write_text(manifest.model_dump_json(), encoding="utf-8")
    watcher = BuildWatcher(settings.builds_dir, embedder, reload_seconds=0)
    watcher.start()
    assert watcher.engine is not None and watcher.engine.build_dir == build
    assert watcher.note == (
        f"build {build.name} was made before builds recorded checksums: not verified"
    )


def test_nothing_is_served_while_the_database_is_damaged(
    built_copy: Path, embedder: Embedder
) -> None:
    settings = make_settings(built_copy)
    sound = settings.db_path.read_bytes()
    settings.db_path.write_bytes(sound[: len(sound) // 2])
    watcher = BuildWatcher(settings.builds_dir, embedder, 0, settings.db_path)
    watcher.start()
    assert watcher.engine is None
    assert watcher.reason.startswith(f"the papers database {settings.db_path} is damaged")
    settings.db_path.write_bytes(sound)  # restored from a backup
    assert watcher.refresh()
    assert watcher.engine is not None and watcher.note is None
