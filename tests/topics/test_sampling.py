"""Sampled fits: topics and map fitted on a random sample, every other paper assigned to it."""

from __future__ import annotations

import json
import pickle
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from service.artifacts import read_manifest
from service.embed.backends import Embedder
from service.pipeline.pipeline import run_build, topic_params
from service.query.engine import Engine
from service.schemas import NOISE_TOPIC, Paper, TopicParams
from service.store import Store
from service.topics.placement import Placement
from service.topics.sampling import draw_sample, fit_on_sample, sample_params, sample_rows
from tests.helpers import built_corpus, make_settings

SAMPLE = 60


@given(st.integers(1, 5000), st.integers(1, 6000), st.integers(0, 2**32 - 1))
def test_a_sample_is_sorted_distinct_rows_and_the_same_for_a_seed(
    n: int, size: int, seed: int
) -> None:
    rows = draw_sample(n, size, seed)
    assert len(rows) == min(size, n)
    assert np.all(np.diff(rows) > 0)
    assert rows.min() >= 0 and rows.max() < n
    assert np.array_equal(rows, draw_sample(n, size, seed))


def test_small_corpora_are_fitted_whole() -> None:
    assert sample_rows(1000, above=1000, size=10, seed=0) is None
    assert sample_rows(1000, above=0, size=10, seed=0) is None
    assert sample_rows(1000, above=500, size=1000, seed=0) is None
    rows = sample_rows(1001, above=1000, size=10, seed=0)
    assert rows is not None and len(rows) == 10


@given(st.integers(2, 500), st.integers(1, 500), st.floats(0.001, 1.0))
def test_sample_parameters_shrink_with_the_share_and_stay_valid(
    size: int, samples: int, share: float
) -> None:
    params = TopicParams(
        umap_components=5,
        umap_neighbors=15,
        min_cluster_size=size,
        min_samples=min(samples, size),
        cluster_selection="leaf",
        seed=1,
    )
    scaled = sample_params(params, share)
    assert 2 <= scaled.min_cluster_size <= max(2, size)
    assert 1 <= scaled.min_samples <= scaled.min_cluster_size
    assert scaled.umap_neighbors == params.umap_neighbors


def _shipped_map(
    place: Callable[[np.ndarray], Placement], batches: list[np.ndarray]
) -> Iterable[Placement]:
    """Each batch placed by a pickled copy of the function, as a worker process receives it."""
    return [pickle.loads(pickle.dumps(place))(batch) for batch in batches]  # noqa: S301


def test_sampled_fit_covers_every_paper_and_keeps_the_sample_as_fitted(built_dir: Path) -> None:
    vectors, texts = built_corpus(built_dir)
    n = len(vectors)
    params = topic_params(make_settings(built_dir), n)
    sample = draw_sample(n, SAMPLE, seed=7)
    fitted = fit_on_sample(vectors, texts, params, 4, sample, progress=False)
    model = fitted.model

    assert model.params == params  # the corpus's parameters, not the sample's
    assert model.assignments.shape == (n,) and fitted.coords.shape == (n, 2)
    assert model.reduced is not None and model.reduced.shape == (n, params.umap_components)
    assert fitted.coords.min() >= 0 and fitted.coords.max() <= 1
    # every row is listed once, under the topic it is assigned to
    assert sorted(r for t in model.topics for r in t.members) == list(range(n))
    for topic in model.topics:
        assert all(model.assignments[r] == topic.id for r in topic.members)
    # the sample keeps what the fit gave it: HDBSCAN's label (its noise flagged as outliers and
    # assigned a topic) and its UMAP position
    clusterer = model.clusterer
    assert clusterer is not None and len(clusterer.labels_) == SAMPLE
    assert model.outliers is not None and model.confidence is not None
    assert np.array_equal(model.outliers[sample], clusterer.labels_ == NOISE_TOPIC)
    core = clusterer.labels_ != NOISE_TOPIC
    fitted_topics = [model.hdbscan_to_topic[int(label)] for label in clusterer.labels_[core]]
    assert model.assignments[sample[core]].tolist() == fitted_topics
    assert ((model.confidence >= 0) & (model.confidence <= 1)).all()
    assert np.allclose(model.reduced[sample], clusterer._raw_data)
    # labels describe the whole corpus: assigned papers are among the topics' members
    rest = np.setdiff1d(np.arange(n), sample)
    assert (model.assignments[rest] != NOISE_TOPIC).any()
    assert all(t.keywords for t in model.topics if t.id != NOISE_TOPIC)

    # the same fit with the batches shipped to workers gives the same result
    pooled = fit_on_sample(vectors, texts, params, 4, sample, map_fn=_shipped_map)
    assert np.array_equal(pooled.model.assignments, model.assignments)
    assert np.allclose(pooled.coords, fitted.coords)


def _sampled_build(data_dir: Path, embedder: Embedder) -> Path:
    settings = make_settings(data_dir, topic_sample_above=100, topic_sample_size=SAMPLE)
    folder, manifest, made = run_build(settings, lambda: embedder, force=True, progress=False)
    assert made and manifest.fit.mode == "full"
    assert (manifest.fit.sampled_papers, manifest.fit.fitted_papers) == (SAMPLE, 115)
    assert {"topics", "map", "assign", "labels"} <= set(manifest.stage_seconds)
    return folder


def test_a_sampled_build_publishes_consistent_artifacts_and_serves(
    built_copy: Path, embedder: Embedder
) -> None:
    folder = _sampled_build(built_copy, embedder)
    n = 115
    assignments = np.load(folder / "assignments.npy")
    assert assignments.shape == (n,)
    assert np.load(folder / "map.npy").shape == (n, 2)
    assert np.load(folder / "reduced.npy").shape == (n, 5)
    assert (folder / "clusterer.joblib").is_file()
    topics = json.loads((folder / "topics.json").read_text())["topics"]
    assert sorted(r for t in topics for r in t["members"]) == list(range(n))
    manifest = read_manifest(folder)
    assert manifest.topic_ids["previous_build"] is not None  # lineage ran against the old build

    engine = Engine(folder, embedder)
    try:
        assert engine.search("diffusion models for image generation", 3)
        assert sum(t.size for t in engine.topics()) == n
        with sqlite3.connect(folder / "papers.sqlite") as db:
            (paper_id,) = db.execute("SELECT id FROM papers WHERE row = 0").fetchone()
        assert engine.paper(paper_id).topic_id == int(assignments[0])
    finally:
        engine.close()


def test_an_incremental_build_over_a_sampled_build_places_new_papers(
    built_copy: Path, embedder: Embedder
) -> None:
    added = 3
    _sampled_build(built_copy, embedder)
    papers = [
        Paper(
            id=f"extra-{i}",
            title=f"Few-step diffusion sampling with learned schedules, variant {i}",
            abstract="Diffusion models need many denoising steps; we learn an 8-step schedule.",
        )
        for i in range(added)
    ]
    with Store(make_settings(built_copy).db_path) as store:
        store.add_live(papers, [])
    settings = make_settings(built_copy, topic_sample_above=100, topic_sample_size=SAMPLE)
    folder, manifest, made = run_build(settings, lambda: embedder, progress=False)
    assert made and manifest.fit.mode == "incremental"
    assert manifest.fit.sampled_papers == SAMPLE
    assert np.load(folder / "assignments.npy").shape == (115 + added,)
    assert np.load(folder / "reduced.npy").shape == (115 + added, 5)
