"""The builds folder (service/artifacts.py): build files and their checksums (written with the
manifest, checked on publish and load), listing the builds and choosing the served one
(``paperscope builds list`` / ``builds use``), refusing what cannot be served."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service import artifacts
from service.artifacts import (
    BuildFolder,
    check_build,
    current_build_dir,
    publish,
    read_manifest,
    staging_dir,
    write_manifest,
)
from service.embed.backends import Embedder
from service.errors import BuildDamaged, InvalidInput, NotFound
from service.pipeline.pipeline import run_build
from tests.helpers import assert_clean_failure, make_settings, run


def _current(data_dir: Path) -> Path:
    build = current_build_dir(make_settings(data_dir).builds_dir)
    assert build is not None
    return build


def _flip(path: Path) -> None:
    """Invert a few bytes in the middle of a file, keeping its size."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    path.write_bytes(bytes(data))


def test_the_manifest_records_every_other_file_of_the_build(built_dir: Path) -> None:
    build = _current(built_dir)
    recorded = read_manifest(build).checksums
    files = {p.relative_to(build).as_posix() for p in build.rglob("*") if p.is_file()}
    assert set(recorded) == files - {"manifest.json"}
    assert {name: entry.bytes for name, entry in recorded.items()} == {
        name: (build / name).stat().st_size for name in recorded
    }
    assert check_build(build).problems == [] and check_build(build).files == len(recorded)


def test_flipped_truncated_and_missing_files_are_named(built_copy: Path) -> None:
    build = _current(built_copy)
    _flip(build / "map.npy")
    truncated = build / "lexical" / "vocab.index.json"
    truncated.write_bytes(truncated.read_bytes()[:10])
    (build / "duplicates.json").unlink()
    written = read_manifest(build).checksums["lexical/vocab.index.json"].bytes
    assert check_build(build).problems == [
        "duplicates.json is missing",
        f"lexical/vocab.index.json has 10 bytes, {written} were written",
        "map.npy does not match its checksum (its bytes changed)",
    ]


def test_a_build_made_before_checksums_is_not_verifiable_but_sound(built_copy: Path) -> None:
    build = _current(built_copy)
    manifest = read_manifest(build).model_copy(update={"checksums": {}})
    (build / "manifest.json").write_text(manifest.model_dump_json(), "utf-8")
    _flip(build / "map.npy")  # nothing to check it against
    assert check_build(build).problems == [] and check_build(build).files == 0


def test_a_build_changed_before_it_is_published_is_refused(built_copy: Path) -> None:
    builds_dir = make_settings(built_copy).builds_dir
    before = _current(built_copy)
    staging = staging_dir(builds_dir, "20990101T000000Z-000000")
    shutil.copytree(before, staging, dirs_exist_ok=True)
    write_manifest(staging, read_manifest(before))
    _flip(staging / "embeddings.npy")  # after the manifest was written
    with pytest.raises(BuildDamaged, match=r"embeddings\.npy does not match its checksum"):
        publish(builds_dir, staging, "20990101T000000Z-000000")
    assert _current(built_copy) == before
    assert BuildFolder(before).verify(read_manifest(before)) == []


@pytest.fixture
def two_builds(built_copy: Path, embedder: Embedder) -> tuple[Path, Path]:
    """A data folder with two real builds: (older, newer), the newer one current."""
    settings = make_settings(built_copy)
    older = artifacts.current_build_dir(settings.builds_dir)
    assert older is not None
    newer, _, _ = run_build(settings, lambda: embedder, force=True, progress=False)
    return older, newer


def test_builds_list_shows_every_build(two_builds: tuple[Path, Path]) -> None:
    older, newer = two_builds
    listed = artifacts.list_builds(newer.parent)
    assert [b.id for b in listed] == [older.name, newer.name]
    assert [b.current for b in listed] == [False, True]
    for summary, folder in zip(listed, two_builds, strict=True):
        manifest = artifacts.read_manifest(folder)
        assert (summary.papers, summary.topics) == (manifest.papers, manifest.n_topics)
        assert summary.created_at == manifest.created_at
        assert summary.bytes == artifacts.folder_bytes(folder) > 0
        assert summary.problem is None
    shown = run("builds", "list", "--json", data_dir=newer.parents[1])
    assert shown.returncode == 0, shown.stderr
    assert [b["id"] for b in json.loads(shown.stdout)] == [older.name, newer.name]
    table = run("builds", "list", data_dir=newer.parents[1]).stdout.splitlines()
    assert table[1].startswith(f"* {newer.name}") and table[0].startswith(f"  {older.name}")


def test_builds_use_switches_back_and_forth(two_builds: tuple[Path, Path]) -> None:
    older, newer = two_builds
    data_dir = newer.parents[1]
    back = run("builds", "use", older.name, data_dir=data_dir)
    assert back.returncode == 0, back.stderr
    assert artifacts.read_pointer(newer.parent) == older.name
    assert "already" in run("builds", "use", older.name, data_dir=data_dir).stdout
    assert artifacts.use_build(newer.parent, newer.name) == older.name
    assert artifacts.current_build_dir(newer.parent) == newer
    assert not list(newer.parent.glob(".CURRENT*"))  # the pointer's temporary file is gone


def test_builds_use_refuses_what_cannot_be_served(two_builds: tuple[Path, Path]) -> None:
    older, newer = two_builds
    builds_dir = newer.parent
    for unknown in ("20200101T000000Z-abcdef", "../builds", ".lock", "CURRENT", ""):
        with pytest.raises(NotFound):
            artifacts.use_build(builds_dir, unknown)
    (older / "map.npy").unlink()
    with pytest.raises(BuildDamaged, match=r"missing map\.npy"):
        artifacts.use_build(builds_dir, older.name)
    refused = run("builds", "use", older.name, data_dir=builds_dir.parent)
    assert_clean_failure(refused, "error: build")
    assert refused.returncode == 2
    assert_clean_failure(run("builds", "use", "nope", data_dir=builds_dir.parent), "no build")
    assert artifacts.read_pointer(builds_dir) == newer.name
    listed = artifacts.list_builds(builds_dir)
    assert listed[0].problem == "incomplete: missing map.npy"


def test_a_copied_build_under_another_name_is_refused(two_builds: tuple[Path, Path]) -> None:
    older, newer = two_builds
    shutil.copytree(older, newer.parent / "20991231T000000Z-copied")
    with pytest.raises(BuildDamaged, match="manifest names build"):
        artifacts.use_build(newer.parent, "20991231T000000Z-copied")


def test_builds_use_waits_for_no_build(two_builds: tuple[Path, Path]) -> None:
    older, newer = two_builds
    with artifacts.build_lock(newer.parent), pytest.raises(InvalidInput, match="another build"):
        artifacts.use_build(newer.parent, older.name)
    assert artifacts.read_pointer(newer.parent) == newer.name


def test_builds_use_refuses_a_build_whose_files_differ_from_their_checksums(
    two_builds: tuple[Path, Path],
) -> None:
    older, newer = two_builds
    _flip(older / "embeddings.npy")
    with pytest.raises(BuildDamaged, match=r"damaged: embeddings\.npy"):
        artifacts.use_build(newer.parent, older.name)
    assert artifacts.read_pointer(newer.parent) == newer.name
    assert str(artifacts.list_builds(newer.parent)[0].problem).startswith("damaged: embeddings.npy")
