"""Build files and their checksums: written with the manifest, checked on publish and load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.artifacts import (
    BuildFolder,
    check_build,
    current_build_dir,
    publish,
    read_manifest,
    staging_dir,
    write_manifest,
)
from service.errors import BuildDamaged
from tests.helpers import make_settings


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
