"""Incremental builds: few changes are placed into the previous fit instead of refitting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from service.embed.backends import Embedder
from service.pipeline.pipeline import run_build
from service.query.engine import Engine
from service.schemas import BuildManifest, Paper
from service.store import Store
from tests.helpers import make_settings


def _paper(i: int) -> Paper:
    return Paper(
        id=f"extra-{i}",
        title=f"Few-step diffusion sampling with learned schedules, variant {i}",
        abstract=(
            "Diffusion models need many denoising steps at inference time. We learn a step "
            f"schedule (variant {i}) that cuts sampling to eight steps while keeping image quality."
        ),
    )


def _add(data_dir: Path, papers: list[Paper]) -> None:
    with Store(make_settings(data_dir).db_path) as store:
        store.add_live(papers, [])


def _build(data_dir: Path, embedder: Embedder, **settings: object) -> tuple[Path, BuildManifest]:
    folder, manifest, made = run_build(
        make_settings(data_dir, **settings), lambda: embedder, progress=False
    )
    assert made
    return folder, manifest


def _assert_consistent(folder: Path) -> None:
    """Every row is listed once, under the topic it is assigned to."""
    assignments = np.load(folder / "assignments.npy")
    topics = json.loads((folder / "topics.json").read_text())["topics"]
    listed = sorted(r for t in topics for r in t["members"])
    assert listed == list(range(len(assignments)))
    for topic in topics:
        assert all(assignments[r] == topic["id"] for r in topic["members"])
    assert len(np.load(folder / "map.npy")) == len(np.load(folder / "reduced.npy"))


def _by_id(folder: Path, name: str) -> dict[str, object]:
    engine = Engine(folder, None)
    values = np.load(folder / name)
    return {pid: values[row].tolist() for row, pid in enumerate(engine.paper_ids)}


def test_a_few_new_papers_are_placed_and_everything_else_is_kept(
    built_copy: Path, embedder: Embedder
) -> None:
    base = sorted((built_copy / "builds").glob("2*"))[-1]
    _add(built_copy, [_paper(1), _paper(2)])
    folder, manifest = _build(built_copy, embedder)
    assert manifest.fit.mode == "incremental" and manifest.fit.fitted_build == base.name
    assert manifest.fit.changed_since_fit == 2 and manifest.embedded_new == 2
    assert "place" in manifest.stage_seconds and "topics" not in manifest.stage_seconds
    assert (
        manifest.papers == 117
        and manifest.topics
        == BuildManifest.model_validate_json((base / "manifest.json").read_text()).topics
    )
    _assert_consistent(folder)
    for name in ("assignments.npy", "map.npy"):
        before, after = _by_id(base, name), _by_id(folder, name)
        assert all(after[pid] == value for pid, value in before.items())
    assert "added by an incremental build" in manifest.index.reason  # the base index, extended
    assert Engine(folder, None).paper_ids[:115] == Engine(base, None).paper_ids
    engine = Engine(folder, embedder)
    assert engine.search(_paper(2).title, 2)[0].id in {"extra-1", "extra-2"}
    pair = json.loads((folder / "duplicates.json").read_text())[0]  # the two variants
    assert {engine.paper_ids[pair["a"]], engine.paper_ids[pair["b"]]} == {"extra-1", "extra-2"}
    topic = {t.id: t for t in engine.topics()}[engine.paper("extra-1").topic_id]
    assert any("diffusion" in word for word in topic.keywords), topic  # the diffusion topic


def test_changes_add_up_until_a_full_fit_is_due(built_copy: Path, embedder: Embedder) -> None:
    _add(built_copy, [_paper(1), _paper(2), _paper(3)])
    _, first = _build(built_copy, embedder)
    assert (first.fit.mode, first.fit.changed_since_fit) == ("incremental", 3)
    _add(built_copy, [_paper(4), _paper(5), _paper(6)])  # 6 > 5% of 115
    folder, second = _build(built_copy, embedder)
    assert second.fit.mode == "full" and second.fit.fitted_build == second.build_id
    assert "topics" in second.stage_seconds and second.fit.changed_since_fit == 0
    _add(built_copy, [_paper(7)])
    _, third = _build(built_copy, embedder)
    assert third.fit.mode == "incremental" and third.fit.fitted_build == folder.name


def test_removed_and_changed_papers(built_copy: Path, embedder: Embedder) -> None:
    base = sorted((built_copy / "builds").glob("2*"))[-1]
    ids = Engine(base, None).paper_ids
    with Store(make_settings(built_copy).db_path) as store:
        assert store.delete(ids[0])
        changed = store.get(ids[1])
        assert changed is not None
        store.add_live([changed.model_copy(update={"abstract": "A new abstract."})], [])
    folder, manifest = _build(built_copy, embedder)
    assert manifest.fit.mode == "incremental" and manifest.topic_ids["removed"] == 1
    assert manifest.topic_ids["placed"] == 1 and manifest.papers == 114
    assert "incremental" not in manifest.index.reason  # rows changed: a fresh index
    _assert_consistent(folder)
    engine = Engine(folder, embedder)
    assert not engine.has_paper(ids[0])
    assert engine.paper(ids[1]).abstract == "A new abstract."


def test_force_a_zero_limit_or_other_settings_refit(built_copy: Path, embedder: Embedder) -> None:
    _add(built_copy, [_paper(1)])
    _, manifest = _build(built_copy, embedder, incremental_limit=0)
    assert manifest.fit.mode == "full"
    _add(built_copy, [_paper(2)])
    _, manifest = _build(built_copy, embedder, label_terms=5)
    assert manifest.fit.mode == "full"
    _, manifest, made = run_build(
        make_settings(built_copy, label_terms=5), lambda: embedder, force=True, progress=False
    )
    assert made and manifest.fit.mode == "full"
