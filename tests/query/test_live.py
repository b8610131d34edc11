"""Live additions: placed like the build's own papers, served at once, kept across restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from service.artifacts import BuildFolder, current_build_dir
from service.embed.backends import Embedder
from service.errors import InvalidInput, NotFound
from service.pipeline.pipeline import run_build
from service.query.engine import Engine
from service.query.live import LiveAdditions, emerging
from service.schemas import NOISE_TOPIC, Paper
from service.store import Store
from service.topics.placement import Placer
from tests.helpers import make_settings

DIFFUSION = Paper(
    id="live-diffusion",
    title="Learned step schedules for few-step diffusion sampling",
    abstract=(
        "Diffusion models generate high-quality images but need many denoising steps at "
        "inference time. We learn a step schedule that cuts sampling to eight steps while "
        "keeping FID, by distilling the probability-flow ODE of a pretrained teacher."
    ),
    categories=["cs.CV"],
    date="2026-11-01",
)
GEOLOGY = Paper(
    id="live-geology",
    title="Bedload transport in braided Himalayan rivers",
    abstract=(
        "We measure bedload sediment flux in braided river channels draining the Himalayan "
        "front with repeat lidar surveys and seismic monitoring; discharge thresholds control "
        "how often channels avulse."
    ),
)


def _open(data_dir: Path, embedder: Embedder) -> tuple[Engine, LiveAdditions]:
    build = current_build_dir(make_settings(data_dir).builds_dir)
    assert build is not None
    engine = Engine(build, embedder)
    live = LiveAdditions(make_settings(data_dir).db_path, embedder)
    live.restore(engine)
    return engine, live


def test_placer_puts_build_papers_back_in_their_own_topic_and_place(built_dir: Path) -> None:
    build = current_build_dir(make_settings(built_dir).builds_dir)
    assert build is not None
    placer = Placer(BuildFolder(build), neighbours=11)
    vectors = np.load(build / "embeddings.npy")
    assignments = np.load(build / "assignments.npy")
    coords = np.load(build / "map.npy")
    placed = placer.place(vectors)
    clustered = assignments != NOISE_TOPIC
    assert np.mean(placed.topics[clustered] == assignments[clustered]) >= 0.7
    assert np.median(np.linalg.norm(placed.coords - coords, axis=1)) < 0.1
    assert placed.coords.min() >= -0.01 and placed.coords.max() <= 1.01


def test_added_paper_is_answered_at_once(built_copy: Path, embedder: Embedder) -> None:
    engine, live = _open(built_copy, embedder)
    before = {t.id: t.size for t in engine.topics()}
    report = live.add(engine, [DIFFUSION])
    added = report.papers[0]
    assert (added.outcome, added.placed) == ("new", True)
    topic = {t.id: t for t in engine.topics()}[added.topic_id]  # the diffusion topic
    assert any("diffusion" in word for word in topic.keywords), topic
    assert engine.search("learned step schedule for few-step diffusion sampling", 3)[0].id == (
        DIFFUSION.id
    )
    assert engine.paper(DIFFUSION.id).abstract == DIFFUSION.abstract
    neighbours = engine.similar(DIFFUSION.id, 5)
    assert DIFFUSION.id not in [h.id for h in neighbours] and len(neighbours) == 5
    assert all("diffusion" in h.title.lower() or h.topic_id == added.topic_id for h in neighbours)
    after = {t.id: t.size for t in engine.topics()}
    assert after[added.topic_id] == before[added.topic_id] + 1
    assert DIFFUSION.id in [p.id for p in engine.topic(added.topic_id, limit=1000).papers]
    points = engine.map_points()
    row = points.ids.index(DIFFUSION.id)
    assert points.topic[row] == added.topic_id and 0 <= points.x[row] <= 1
    assert len(points.ids) == engine.size + 1
    with Store(make_settings(built_copy).db_path) as store:
        assert store.get(DIFFUSION.id) == DIFFUSION  # the next build includes it


def test_additions_survive_a_restart_and_the_next_build_takes_them_in(
    built_copy: Path, embedder: Embedder
) -> None:
    engine, live = _open(built_copy, embedder)
    first = live.add(engine, [DIFFUSION, GEOLOGY]).papers
    restarted, _ = _open(built_copy, embedder)
    assert [restarted.paper(p.id).topic_id for p in first] == [p.topic_id for p in first]
    assert restarted.search(GEOLOGY.title, 1)[0].id == GEOLOGY.id
    assert emerging(restarted).added_since_build == 2

    settings = make_settings(built_copy)
    _, manifest, rebuilt = run_build(settings, lambda: embedder, progress=False)
    assert rebuilt and manifest.papers == restarted.size + 2
    after_build, _ = _open(built_copy, embedder)
    assert after_build.live.papers == ()  # built in: nothing left to overlay
    assert after_build.paper(GEOLOGY.id).title == GEOLOGY.title


def test_reposting_unchanged_is_a_no_op_and_changed_replaces(
    built_copy: Path, embedder: Embedder
) -> None:
    engine, live = _open(built_copy, embedder)
    live.add(engine, [DIFFUSION])
    again = live.add(engine, [DIFFUSION]).papers[0]
    assert (again.outcome, again.placed) == ("unchanged", False)
    existing = engine.paper(engine.topics()[0].representative[0].id)
    changed = Paper(**{**existing.model_dump(include=set(Paper.model_fields)), "abstract": "x y"})
    updated = live.add(engine, [changed]).papers[0]
    assert (updated.outcome, updated.placed) == ("updated", True)
    assert engine.paper(existing.id).abstract == "x y"
    ids = engine.map_points().ids
    assert ids.count(existing.id) == 1 and ids.count(DIFFUSION.id) == 1
    assert len(ids) == engine.size + 1


def test_deleting_an_added_paper_removes_it_for_good(built_copy: Path, embedder: Embedder) -> None:
    engine, live = _open(built_copy, embedder)
    live.add(engine, [DIFFUSION])
    with Store(make_settings(built_copy).db_path) as store:
        assert store.delete(DIFFUSION.id)
    assert engine.hide([DIFFUSION.id]) == 1
    with pytest.raises(NotFound):
        engine.paper(DIFFUSION.id)
    assert DIFFUSION.id not in [h.id for h in engine.search(DIFFUSION.title, 10)]
    restarted, _ = _open(built_copy, embedder)
    assert not restarted.has_paper(DIFFUSION.id)


def test_emerging_counts_papers_that_fit_no_topic(built_copy: Path, embedder: Embedder) -> None:
    engine, live = _open(built_copy, embedder)
    report = live.add(engine, [DIFFUSION, GEOLOGY])
    news = emerging(engine)
    unassigned = [p.id for p in report.papers if engine.paper(p.id).outlier]
    assert GEOLOGY.id in unassigned  # nothing in the corpus is about rivers
    far = engine.paper(GEOLOGY.id)  # too far from every topic to be assigned one
    assert (far.topic_id, far.confidence) == (NOISE_TOPIC, 0.0)
    assert news.added_since_build == 2
    assert news.unassigned == len(unassigned)
    assert [p.id for p in news.papers] == unassigned
    assert news.threshold == engine.manifest.topics.min_cluster_size
    assert news.rebuild_suggested == (news.unassigned >= news.threshold)


def test_papers_placed_against_another_build_are_placed_again(
    built_copy: Path, embedder: Embedder
) -> None:
    engine, live = _open(built_copy, embedder)
    live.add(engine, [DIFFUSION])
    db = sqlite3.connect(make_settings(built_copy).db_path)
    db.execute("UPDATE live_papers SET build_id = 'an-older-build', x = 5, y = 5")
    db.commit()
    db.close()
    restarted, _ = _open(built_copy, embedder)
    points = restarted.map_points()
    row = points.ids.index(DIFFUSION.id)
    assert 0 <= points.x[row] <= 1  # placed again, not at the stale (5, 5)
    with Store(make_settings(built_copy).db_path) as store:
        assert [r.build_id for r in store.live_rows()] == [restarted.manifest.build_id]


def test_bad_additions_are_refused_whole(built_copy: Path, embedder: Embedder) -> None:
    engine, live = _open(built_copy, embedder)
    with pytest.raises(InvalidInput, match="unique"):
        live.add(engine, [DIFFUSION, DIFFUSION])
    with pytest.raises(InvalidInput, match="no papers"):
        live.add(engine, [])
    assert not engine.has_paper(DIFFUSION.id)
    with pytest.raises(InvalidInput, match="embedding model"):
        LiveAdditions(make_settings(built_copy).db_path, None).add(engine, [DIFFUSION])


def test_added_papers_are_found_by_their_words_too(built_copy: Path, embedder: Embedder) -> None:
    engine, live = _open(built_copy, embedder)
    live.add(engine, [GEOLOGY, DIFFUSION])
    lexical = engine.search("bedload sediment in braided rivers", 3, mode="lexical")
    assert lexical[0].id == GEOLOGY.id and (lexical[0].lexical_score or 0) > 0
    hybrid = engine.search("learned step schedule diffusion sampling", 3, mode="hybrid")
    assert hybrid[0].id == DIFFUSION.id
    assert hybrid[0].dense_score is not None and hybrid[0].lexical_score is not None


def test_a_live_addition_is_placed_as_the_next_incremental_build_places_it(
    built_copy: Path, embedder: Embedder
) -> None:
    """Live additions and incremental builds share one placement: same topic, outlier flag
    and confidence for the same paper."""
    engine, live = _open(built_copy, embedder)
    live.add(engine, [DIFFUSION, GEOLOGY])
    served = {p.id: engine.paper(p.id) for p in (DIFFUSION, GEOLOGY)}
    _, manifest, rebuilt = run_build(make_settings(built_copy), lambda: embedder, progress=False)
    assert rebuilt and manifest.fit.mode == "incremental"
    after, _ = _open(built_copy, embedder)
    for paper_id, before in served.items():
        built = after.paper(paper_id)
        assert (built.topic_id, built.outlier) == (before.topic_id, before.outlier)
        assert built.confidence == pytest.approx(before.confidence, abs=1e-3)
