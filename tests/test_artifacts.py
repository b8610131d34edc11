"""The builds folder (service/artifacts.py): listing the builds and choosing the served one
(``paperscope builds list`` / ``builds use``), refusing what cannot be served."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service import artifacts
from service.build.pipeline import run_build
from service.embed.backends import Embedder
from service.errors import BuildDamaged, InvalidInput, NotFound
from tests.helpers import assert_clean_failure, make_settings, run


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
