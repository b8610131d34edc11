"""Faults: kill -9 in the middle of a build or an ingest, and restarts, lose nothing; flipped
or truncated bytes in a build or the database are detected, never served; a full disk or a
read-only folder is a clear error that leaves everything as it was."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import artifacts
from service.api.app import create_app
from service.artifacts import check_build, current_build_dir, read_manifest
from service.config import Settings
from service.embed.backends import Embedder
from service.query.serving import BuildWatcher
from service.store import Store
from tests.helpers import (
    SCRIPT,
    assert_error,
    integrity,
    make_settings,
    run,
    subprocess_env,
    tmpfs,
)

QUERIES = ["one-step diffusion distillation", "reward hacking in RLHF", "speech recognition"]


def _start(args: list[str], data_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [SCRIPT, *args],
        env=subprocess_env(data_dir=data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_when_logged(args: list[str], data_dir: Path, text: str) -> None:
    """Run ``paperscope ARGS`` and kill -9 it as soon as its log has a line with ``text``."""
    process = subprocess.Popen(
        [SCRIPT, *args],
        env=subprocess_env(data_dir=data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if text in line:
            break
    assert process.poll() is None, f"the command ended before logging {text!r}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()


@pytest.mark.slow
def test_kill_9_during_builds_keeps_serving_the_previous_build(
    built_copy: Path, embedder: Embedder
) -> None:
    settings = make_settings(built_copy, reload_seconds=0.2)
    before = current_build_dir(settings.builds_dir)
    assert before is not None
    with sqlite3.connect(settings.db_path) as db:  # empty the embedding cache: builds must embed
        db.execute("DELETE FROM embeddings")
    with Store(settings.db_path) as store:
        papers_before = store.count()
    with TestClient(create_app(settings, embedder)) as server:
        # killed while embedding, then while clustering: when the build's log says it got
        # there (a fixed delay missed both stages on a fast host)
        for stage_started in ("to embed", "stage topics ..."):
            _kill_when_logged(["build", "--force"], built_copy, stage_started)
            assert current_build_dir(settings.builds_dir) == before
            ready = server.get("/api/v1/ready")
            assert ready.status_code == 200 and ready.json()["build_id"] == before.name
            assert server.get("/api/v1/search", params={"q": "diffusion"}).status_code == 200
            assert integrity(settings.db_path) == "ok"
            with Store(settings.db_path) as store:
                assert store.count() == papers_before
        finished = _start(["build", "--force"], built_copy)
        assert finished.wait(timeout=300) == 0
        after = current_build_dir(settings.builds_dir)
        assert after is not None and after != before
        deadline = time.monotonic() + 10
        while server.get("/api/v1/ready").json()["build_id"] != after.name:
            assert time.monotonic() < deadline, "the server did not switch to the new build"
            time.sleep(0.2)
    assert not list(settings.builds_dir.glob(".tmp-*"))  # the next build cleared leftovers


@pytest.mark.slow
def test_kill_9_during_ingest_is_all_or_nothing(tmp_path: Path) -> None:
    source = tmp_path / "many.jsonl"
    with source.open("w") as handle:
        for i in range(150_000):
            record = {"id": f"x{i}", "title": f"Paper {i}", "abstract": f"Abstract number {i}."}
            handle.write(json.dumps(record) + "\n")
    data_dir = tmp_path / "data"
    process = _start(["ingest", str(source)], data_dir)
    # killed once the ingest has written a few MB of papers (its transaction spills into the
    # WAL; it writes about 23 MB in all), not after a fixed sleep: on a fast machine the whole
    # ingest once finished within 4 s
    wal = data_dir / "papers.sqlite-wal"
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if wal.exists() and wal.stat().st_size >= 4_000_000:
            break
        time.sleep(0.02)
    killed = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert integrity(data_dir / "papers.sqlite") == "ok"
    with Store(data_dir / "papers.sqlite") as store:
        count = store.count()
    assert killed, "the ingest finished before the kill; the test needs a bigger file"
    assert count in (0, 150_000)


def test_restart_gives_the_same_answers(built_dir: Path, embedder: Embedder) -> None:
    def answers() -> list[list[str]]:
        with TestClient(create_app(make_settings(built_dir), embedder)) as client:
            results = [
                [h["id"] for h in client.get("/api/v1/search", params={"q": q}).json()["results"]]
                for q in QUERIES
            ]
            first = results[0][0]
            similar = client.get(f"/api/v1/papers/{first}/similar").json()["results"]
            return [*results, [h["id"] for h in similar]]

    assert answers() == answers()


# -- damaged builds -------------------------------------------------------------------------

ARTIFACTS = (
    artifacts.EMBEDDINGS,
    artifacts.INDEX,
    artifacts.PAPERS,
    artifacts.TOPICS,
    artifacts.ASSIGNMENTS,
    artifacts.OUTLIERS,
    artifacts.CONFIDENCE,
    artifacts.MAP,
    artifacts.REDUCED,
    artifacts.CLUSTERER,
    artifacts.DUPLICATES,
    artifacts.NEIGHBOUR_ROWS,
    artifacts.NEIGHBOUR_SCORES,
    artifacts.LEXICAL,
)
"""Every file a build writes besides its manifest (the lexical index: each file of its folder)."""


def _flip(path: Path) -> None:
    """Invert 4 bytes in the middle of a file, keeping its size (as a bad disk or copy would)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    path.write_bytes(bytes(data))


def _files_of(build: Path, artifact: str) -> list[str]:
    target = build / artifact
    files = sorted(target.rglob("*")) if target.is_dir() else [target]
    return [p.relative_to(build).as_posix() for p in files if p.is_file()]


@pytest.fixture
def two_builds(built_copy: Path) -> tuple[Settings, Path, Path]:
    """A data folder with the published build and an older sound one (a copy, renamed)."""
    settings = make_settings(built_copy)
    current = current_build_dir(settings.builds_dir)
    assert current is not None
    older = settings.builds_dir / "20000101T000000Z-older0"
    shutil.copytree(current, older)
    manifest = read_manifest(older).model_copy(update={"build_id": older.name})
    (older / artifacts.MANIFEST).write_text(manifest.model_dump_json(), encoding="utf-8")
    return settings, current, older


def test_the_flip_test_covers_every_file_of_a_build(built_dir: Path) -> None:
    build = current_build_dir(make_settings(built_dir).builds_dir)
    assert build is not None
    recorded = {name.split("/")[0] for name in read_manifest(build).checksums}
    assert recorded == set(ARTIFACTS)


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_flipped_bytes_in_any_build_file_are_detected_and_the_older_build_served(
    two_builds: tuple[Settings, Path, Path], embedder: Embedder, artifact: str
) -> None:
    settings, current, older = two_builds
    for name in _files_of(current, artifact):
        _flip(current / name)
        assert check_build(current).problems == [
            f"{name} does not match its checksum (its bytes changed)"
        ]
        watcher = BuildWatcher(settings.builds_dir, embedder, 0, settings.db_path)
        watcher.start()
        assert watcher.engine is not None and watcher.engine.build_dir == older
        assert watcher.note is not None and f"{name} does not match its checksum" in watcher.note
        _flip(current / name)  # flipped back: the next file of a folder is checked alone
    assert check_build(current).problems == []


@pytest.mark.parametrize("artifact", [artifacts.EMBEDDINGS, artifacts.MAP])
def test_flipped_bytes_with_no_other_build_are_a_503_naming_the_file(
    built_copy: Path, embedder: Embedder, artifact: str
) -> None:
    """Once: ready, with dense scores of 838.9 and -55.5 (embeddings) or papers at x = -28."""
    settings = make_settings(built_copy)
    build = current_build_dir(settings.builds_dir)
    assert build is not None
    _flip(build / artifact)
    with TestClient(create_app(settings, embedder)) as client:
        for path in ("/api/v1/ready", "/api/v1/search?q=diffusion", "/api/v1/map"):
            error = assert_error(client.get(path), 503, "not_ready")
            assert f"{artifact} does not match its checksum" in error["message"]


def test_verify_reports_a_flipped_build_file(two_builds: tuple[Settings, Path, Path]) -> None:
    settings, current, older = two_builds
    sound = run("verify", data_dir=settings.data_dir)
    assert sound.returncode == 0, sound.stderr
    assert [line.split()[0] for line in sound.stdout.splitlines()] == ["ok"] * 4
    _flip(current / artifacts.INDEX)
    damaged = run("verify", data_dir=settings.data_dir)
    assert damaged.returncode == 2 and "Traceback" not in damaged.stderr
    said = f"DAMAGED  build     {current.name}: index.faiss does not match its checksum"
    assert said in damaged.stdout
    assert f"a server serves {older.name} instead" in damaged.stdout
    assert damaged.stderr.splitlines()[-1] == (
        f"error: 2 of 4 items damaged: build {current.name}, current CURRENT"
    )


# -- a damaged papers database --------------------------------------------------------------


def _damage_database(db: Path, how: str) -> None:
    data = db.read_bytes()
    if how == "truncated":
        db.write_bytes(data[: len(data) // 2])
        return
    page = len(data) // 2 // 4096 * 4096  # the b-tree header of a page in the middle
    flipped = bytes(b ^ 0xFF for b in data[page : page + 16])
    db.write_bytes(data[:page] + flipped + data[page + 16 :])


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_damaged_database_is_an_error_and_a_503_never_a_traceback(
    built_copy: Path, embedder: Embedder, how: str
) -> None:
    settings = make_settings(built_copy, api_key="key")
    _damage_database(settings.db_path, how)
    info = run("info", data_dir=built_copy)
    assert info.returncode == 2 and "Traceback" not in info.stderr
    assert info.stderr.startswith(f"error: the papers database {settings.db_path} is damaged")
    verify = run("verify", data_dir=built_copy)
    assert verify.returncode == 2 and "Traceback" not in verify.stderr
    assert f"DAMAGED  database  {settings.db_path}: integrity_check:" in verify.stdout
    assert verify.stderr.splitlines()[-1] == "error: 1 of 3 items damaged: database papers.sqlite"
    with TestClient(create_app(settings, embedder)) as client:
        for response in (
            client.get("/api/v1/ready"),
            client.get("/api/v1/search", params={"q": "diffusion"}),
            client.post(
                "/api/v1/papers",
                json={"papers": [{"title": "T", "abstract": "A"}]},
                headers={"X-API-Key": "key"},
            ),
        ):
            error = assert_error(response, 503, "not_ready")
            assert "the papers database" in error["message"] and "is damaged" in error["message"]


def test_ingest_and_build_refuse_a_damaged_database(built_copy: Path, tmp_path: Path) -> None:
    db = make_settings(built_copy).db_path
    _damage_database(db, "flipped")
    damaged = db.read_bytes()
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps({"id": "n1", "title": "T", "abstract": "A"}) + "\n")
    for args in (("ingest", source), ("build", "--force")):
        result = run(*args, data_dir=built_copy)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "error: the papers database" in result.stderr and "is damaged" in result.stderr
    assert db.read_bytes() == damaged  # nothing was written into it


# -- full disks and read-only folders (a small tmpfs: root only) ----------------------------


def _fill(folder: Path, leave: int = 0) -> Path:
    """Fill the filesystem of ``folder`` until ``leave`` bytes (about) are free."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while shutil.disk_usage(folder).free > leave:
            os.write(fd, b"\0" * min(1 << 20, max(4096, shutil.disk_usage(folder).free - leave)))
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    return filler


def _assert_sound(settings: Settings, papers: int) -> None:
    assert integrity(settings.db_path) == "ok"
    with Store(settings.db_path) as store:
        assert store.count() == papers
        assert store.collections() == [] and store.splits() == []
        assert store.live_rows() == []


@pytest.mark.slow
def test_a_build_on_a_full_disk_is_a_clear_error_and_the_old_build_stays(
    built_dir: Path, embedder: Embedder, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        data = disk / "data"
        shutil.copytree(built_dir, data)
        settings = make_settings(data)
        before = current_build_dir(settings.builds_dir)
        assert before is not None
        with Store(settings.db_path) as store:
            papers = store.count()
        _fill(disk, leave=300_000)  # less than a build of the bundled corpus needs
        result = run("build", "--force", data_dir=data)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        message = result.stderr.splitlines()[-1]
        assert message.startswith("error: writing build ") and "No space left on device" in message
        assert f"MB free in {settings.builds_dir}" in message
        assert "the current build takes" in message and f"build {before.name} is still" in message
        assert current_build_dir(settings.builds_dir) == before
        assert not list(settings.builds_dir.glob(".tmp-*"))  # the partial build was removed
        assert check_build(before).problems == []
        _assert_sound(settings, papers)
        with TestClient(create_app(settings, embedder)) as client:
            assert client.get("/api/v1/ready").json()["build_id"] == before.name


@pytest.mark.slow
def test_writes_on_a_full_disk_are_507_and_leave_nothing_half_written(
    built_dir: Path, embedder: Embedder, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        data = disk / "data"
        shutil.copytree(built_dir, data)
        settings = make_settings(data, api_key="key", reload_seconds=0.2)
        with Store(settings.db_path) as store:
            papers = store.count()
        key = {"X-API-Key": "key"}
        with TestClient(create_app(settings, embedder)) as client:
            topic = client.get("/api/v1/topics").json()[0]
            seed = topic["representative"][0]["id"]
            filler = _fill(disk)
            posted = {"papers": [{"title": "On full disks", "abstract": "What a full disk does."}]}
            for response in (
                client.post("/api/v1/papers", json=posted, headers=key),
                client.put("/api/v1/collections/mine", json={"positive": [seed]}, headers=key),
                client.post(f"/api/v1/topics/{topic['id']}/split", headers=key),
            ):
                error = assert_error(response, 507, "insufficient_storage")
                assert "No space left on device" in error["message"]
                assert "0.0 MB free" in error["message"]
            # reads go on from the build in memory
            assert client.get("/api/v1/search", params={"q": "full disk"}).status_code == 200
            assert client.get("/api/v1/ready").status_code == 200
            source = tmp_path / "one.jsonl"
            source.write_text(json.dumps({"id": "n1", "title": "T", "abstract": "A"}) + "\n")
            commands = [
                ("ingest", source),
                ("collection", "add", "mine", seed),
                ("export", "papers", disk / "papers.csv"),
            ]
            for args in commands:
                result = run(*args, data_dir=data)
                assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
                assert result.stderr.startswith("error: "), result.stderr
                assert "No space left on device" in result.stderr
            assert not (disk / "papers.csv").exists()  # no half-written export
            assert not list(disk.glob(".papers.csv*"))
            filler.unlink()
        _assert_sound(settings, papers)


@pytest.mark.slow
def test_a_read_only_data_folder_is_a_clear_error(
    built_dir: Path, embedder: Embedder, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        data = disk / "data"
        shutil.copytree(built_dir, data)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        source = tmp_path / "one.jsonl"
        source.write_text(json.dumps({"id": "n1", "title": "T", "abstract": "A"}) + "\n")
        for args in (("info",), ("ingest", source), ("build", "--force")):
            result = run(*args, data_dir=data)
            assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
            assert result.stderr.startswith("error: "), result.stderr
            assert "Read-only file system" in result.stderr
            assert "the data folder must be writable" in result.stderr
        checked = run("verify", data_dir=data)  # still checks what it can read
        assert checked.returncode == 0, checked.stdout + checked.stderr
        with TestClient(create_app(make_settings(data), embedder)) as client:
            error = assert_error(client.get("/api/v1/ready"), 503, "not_ready")
            assert "Read-only file system" in error["message"]
