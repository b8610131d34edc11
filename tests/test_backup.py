"""Backups and restores (service/backup.py): consistent under concurrent writes, complete or
absent when killed, and a restored data folder answers as the original did."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.artifacts import current_build_dir
from service.backup import BACKUP_MANIFEST, backup, read_backup
from service.embed.backends import Embedder
from service.errors import InvalidInput
from service.pipeline.pipeline import run_build
from service.query import collections, subtopics
from service.query.engine import Engine
from service.query.live import LiveAdditions
from service.schemas import CollectionIn, IngestReport, Paper
from service.store import Store
from tests.helpers import (
    SCRIPT,
    assert_clean_failure,
    integrity,
    make_settings,
    run,
    subprocess_env,
    tmpfs,
)

QUERIES = ["one-step diffusion distillation", "reward hacking in RLHF", "speech recognition"]


def _dump(db: Path) -> list[str]:
    """Every table's rows as SQL, in a stable order: equal dumps mean equal databases."""
    connection = sqlite3.connect(db)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def _answers(data_dir: Path, embedder: Embedder) -> list[list[tuple[str, float]]]:
    with TestClient(create_app(make_settings(data_dir), embedder)) as client:
        return [
            [
                (hit["id"], round(hit["score"], 5))
                for hit in client.get("/api/v1/search", params={"q": q}).json()["results"]
            ]
            for q in QUERIES
        ]


def _counts(db: Path) -> tuple[int, ...]:
    connection = sqlite3.connect(db)
    try:
        tables = ("papers", "embeddings", "collections", "live_papers", "topic_splits")
        return tuple(
            int(connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])  # noqa: S608
            for t in tables
        )
    finally:
        connection.close()


def _pad_cache(db: Path, rows: int) -> None:
    """Fill the embedding cache with ``rows`` vectors of another model: a bigger database."""
    blob = np.full(384, 384**-0.5, dtype=np.float32).tobytes()  # unit length, as stored
    with sqlite3.connect(db) as connection:
        connection.executemany(
            "INSERT INTO embeddings VALUES ('padding', ?, ?)",
            ((f"h{i}", blob) for i in range(rows)),
        )


def _with_everything(data_dir: Path, embedder: Embedder) -> None:
    """A live addition, a collection and a topic split in the papers database."""
    settings = make_settings(data_dir)
    build = current_build_dir(settings.builds_dir)
    assert build is not None
    engine = Engine(build, embedder)
    try:
        paper = Paper(
            id="live-1", title="Diffusion distillation live", abstract="One-step diffusion."
        )
        LiveAdditions(settings.db_path, embedder).add(engine, [paper])
        first = engine.paper_ids[0]
        collections.put(settings.db_path, engine, "mine", CollectionIn(positive=[first]))
        biggest = max(engine.topics(), key=lambda t: t.size)
        subtopics.split_topic(engine, settings.db_path, biggest.id)
    finally:
        engine.close()


def test_restore_of_a_backup_with_its_build_answers_the_same(
    built_copy: Path, tmp_path: Path, embedder: Embedder
) -> None:
    _with_everything(built_copy, embedder)
    made = run("backup", tmp_path / "b", "--with-build", data_dir=built_copy)
    assert made.returncode == 0, made.stderr
    manifest = read_backup(tmp_path / "b")
    build = current_build_dir(make_settings(built_copy).builds_dir)
    assert build is not None and manifest.build_id == build.name and manifest.with_build
    with Store(make_settings(built_copy).db_path) as store:
        assert manifest.papers == store.count()

    fresh = tmp_path / "fresh"
    restored = run("restore", tmp_path / "b", data_dir=fresh)
    assert restored.returncode == 0, restored.stderr
    assert _dump(fresh / "papers.sqlite") == _dump(built_copy / "papers.sqlite")
    assert current_build_dir(make_settings(fresh).builds_dir) == fresh / "builds" / build.name
    assert _answers(fresh, embedder) == _answers(built_copy, embedder)


def test_restore_then_build_gives_the_same_answers(
    built_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    backup(make_settings(built_dir), tmp_path / "b", with_build=False, force=False)
    fresh = tmp_path / "fresh"
    restored = run("restore", tmp_path / "b", data_dir=fresh)
    assert restored.returncode == 0, restored.stderr
    assert "not copied" in restored.stdout
    assert current_build_dir(make_settings(fresh).builds_dir) is None
    _, manifest, _ = run_build(make_settings(fresh), lambda: embedder, progress=False)
    assert manifest.embedded_new == 0  # the embedding cache came back with the papers
    assert _answers(fresh, embedder) == _answers(built_dir, embedder)


def test_backup_during_concurrent_writes_loses_nothing(built_copy: Path, tmp_path: Path) -> None:
    """A writer commits paper writer-<i>, then a collection of that name (one transaction each)
    throughout a `paperscope backup` process: the backup holds every one committed before it
    started, and is one snapshot (a prefix of the writes, never a gap)."""
    db = make_settings(built_copy).db_path
    _pad_cache(db, 20_000)  # ~30 MB: a copy that takes a while
    committed = 0
    stop = threading.Event()

    def write() -> None:
        nonlocal committed
        with Store(db) as store:
            while not stop.is_set():
                name = f"writer-{committed:06d}"
                paper = Paper(id=name, title="T", abstract=f"written {committed}")
                store.ingest([paper], IngestReport(file="writer", format="test"))
                store.put_collection(name, CollectionIn(positive=[name]), "now")
                committed += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while committed < 20:
            time.sleep(0.01)
        before = committed
        made = run("backup", tmp_path / "b", data_dir=built_copy)
        after = committed
    finally:
        stop.set()
        writer.join()
    assert made.returncode == 0, made.stderr
    assert after > before  # the writer was not held up by the backup
    copy = tmp_path / "b" / "papers.sqlite"
    assert integrity(copy) == "ok"
    with sqlite3.connect(copy) as connection:
        papers = sorted(
            r[0] for r in connection.execute("SELECT id FROM papers WHERE id LIKE 'writer-%'")
        )
        kept = sorted(
            r[0] for r in connection.execute("SELECT name FROM collections WHERE name LIKE 'w%'")
        )
    assert len(papers) >= before
    assert papers == [f"writer-{i:06d}" for i in range(len(papers))]
    assert kept == [f"writer-{i:06d}" for i in range(len(kept))]
    assert len(kept) in (len(papers), len(papers) - 1)
    assert read_backup(tmp_path / "b").papers == 115 + len(papers)


@pytest.mark.slow
def test_kill_9_during_backup_leaves_no_backup_and_the_database_intact(
    built_copy: Path, tmp_path: Path
) -> None:
    db = make_settings(built_copy).db_path
    _pad_cache(db, 150_000)  # ~230 MB
    before = _counts(db)
    dest = tmp_path / "b"
    process = subprocess.Popen(
        [SCRIPT, "backup", str(dest)],
        env=subprocess_env(data_dir=built_copy),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    copied = 0
    while process.poll() is None and time.monotonic() < deadline:
        copies = list(tmp_path.glob(".b.partial-*/papers.sqlite"))
        copied = copies[0].stat().st_size if copies else 0
        if copied >= 20_000_000:
            break
        time.sleep(0.01)
    killed = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert killed, "the backup finished before the kill; the test needs a bigger database"
    assert not dest.exists()
    assert list(tmp_path.glob(".b.partial-*"))  # what it left is hidden, and no backup
    assert integrity(db) == "ok"
    assert _counts(db) == before
    refused = run("restore", tmp_path / "b", "--force", data_dir=built_copy)
    assert_clean_failure(refused, "error:")
    again = run("backup", dest, data_dir=built_copy)
    assert again.returncode == 0, again.stderr
    assert not list(tmp_path.glob(".b.partial-*"))  # the next backup cleared the leftover
    assert read_backup(dest).papers == 115


def test_refusals_change_nothing(built_copy: Path, tmp_path: Path) -> None:
    db = make_settings(built_copy).db_path
    before = _dump(db)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    assert_clean_failure(run("backup", taken, data_dir=built_copy), "is not empty")
    assert_clean_failure(
        run("backup", taken, "--force", data_dir=built_copy), "not a paperscope backup"
    )
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    inside = built_copy / "builds" / "b"
    assert_clean_failure(run("backup", inside, data_dir=built_copy), "inside the builds folder")
    assert not inside.exists()

    made = run("backup", tmp_path / "b", data_dir=built_copy)
    assert made.returncode == 0, made.stderr
    assert_clean_failure(run("backup", tmp_path / "b", data_dir=built_copy), "is not empty")
    assert_clean_failure(run("restore", tmp_path / "b", data_dir=built_copy), "--force")
    assert_clean_failure(run("restore", taken, "--force", data_dir=built_copy), "no backup.json")

    damaged = tmp_path / "b" / "papers.sqlite"
    data = bytearray(damaged.read_bytes())
    data[5000] ^= 0xFF
    damaged.write_bytes(bytes(data))
    assert_clean_failure(
        run("restore", tmp_path / "b", "--force", data_dir=built_copy), "differs from its checksum"
    )
    assert _dump(db) == before
    assert not list(built_copy.glob(".papers.sqlite.restore-*"))


def test_force_replaces_an_earlier_backup(built_copy: Path, tmp_path: Path) -> None:
    settings = make_settings(built_copy)
    backup(settings, tmp_path / "b", with_build=False, force=False)
    with Store(settings.db_path) as store:
        store.ingest(
            [Paper(id="later", title="T", abstract="A")], IngestReport(file="x", format="y")
        )
    with pytest.raises(InvalidInput):
        backup(settings, tmp_path / "b", with_build=False, force=False)
    again = backup(settings, tmp_path / "b", with_build=True, force=True)
    assert read_backup(tmp_path / "b") == again
    assert again.papers == 116 and again.with_build
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "data"]  # nothing left beside it


def test_restore_refuses_a_database_in_use(built_copy: Path, tmp_path: Path) -> None:
    settings = make_settings(built_copy)
    backup(settings, tmp_path / "b", with_build=False, force=False)
    with Store(settings.db_path):  # a server, a build or an ingest holding it open
        refused = run("restore", tmp_path / "b", "--force", data_dir=built_copy)
    assert_clean_failure(refused, "is in use")
    assert run("restore", tmp_path / "b", "--force", data_dir=built_copy).returncode == 0


def test_backup_manifest_lists_every_file(built_copy: Path, tmp_path: Path) -> None:
    made = backup(make_settings(built_copy), tmp_path / "b", with_build=True, force=False)
    on_disk = {
        p.relative_to(tmp_path / "b").as_posix()
        for p in (tmp_path / "b").rglob("*")
        if p.is_file() and p.name != BACKUP_MANIFEST
    }
    assert set(made.files) == on_disk
    assert {"papers.sqlite", "build-manifest.json"} <= on_disk
    assert f"builds/{made.build_id}/manifest.json" in on_disk
    raw = json.loads((tmp_path / "b" / BACKUP_MANIFEST).read_text())
    assert raw["paperscope_version"] and raw["created_at"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs."""
    with tmpfs(tmp_path / "small", "20m") as folder:
        yield folder


@pytest.mark.slow
def test_a_full_disk_fails_backup_and_restore_cleanly(
    built_copy: Path, tmp_path: Path, small_disk: Path
) -> None:
    _pad_cache(make_settings(built_copy).db_path, 20_000)  # ~30 MB: more than the disk holds
    full = run("backup", small_disk / "b", data_dir=built_copy)
    assert_clean_failure(full, "full")
    assert list(small_disk.iterdir()) == []  # no backup, nothing half-written left
    backup(make_settings(built_copy), tmp_path / "b", with_build=False, force=False)
    refused = run("restore", tmp_path / "b", data_dir=small_disk / "data")
    assert_clean_failure(refused, "No space left on device")
    assert list((small_disk / "data").iterdir()) == []


def test_a_backup_of_another_format_is_refused(built_copy: Path, tmp_path: Path) -> None:
    backup(make_settings(built_copy), tmp_path / "b", with_build=False, force=False)
    listed = tmp_path / "b" / BACKUP_MANIFEST
    listed.write_text(listed.read_text().replace('"format_version": 1', '"format_version": 2'))
    with pytest.raises(InvalidInput, match="format 2"):
        read_backup(tmp_path / "b")
    listed.write_text("{}")
    with pytest.raises(InvalidInput, match="not a backup manifest"):
        read_backup(tmp_path / "b")


def test_a_different_build_of_the_same_id_is_replaced_only_with_force(
    built_copy: Path, tmp_path: Path
) -> None:
    made = backup(make_settings(built_copy), tmp_path / "b", with_build=True, force=False)
    other = tmp_path / "other"
    shutil.copytree(built_copy / "builds", other / "builds")
    changed = other / "builds" / str(made.build_id) / "duplicates.json"
    changed.write_text("[]\n")  # differs from the backup's copy
    refused = run("restore", tmp_path / "b", data_dir=other)
    assert_clean_failure(refused, "differs from the backup's")
    assert not (other / "papers.sqlite").exists()  # refused before anything changed
    done = run("restore", tmp_path / "b", "--force", data_dir=other)
    assert done.returncode == 0, done.stderr
    assert "restored; now current" in done.stdout
    original = built_copy / "builds" / str(made.build_id) / "duplicates.json"
    assert changed.read_bytes() == original.read_bytes()
    assert sorted(p.name for p in (other / "builds").iterdir() if p.name.startswith(".tmp")) == []
