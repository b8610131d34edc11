"""Topic ids survive rebuilds; splits and merges are recorded as lineage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.artifacts import current_build_dir, read_manifest
from service.embed.backends import Embedder
from service.pipeline.pipeline import run_build
from service.query.engine import Engine
from service.schemas import TopicParams
from service.topics.lineage import PreviousTopics, carry_over
from service.topics.model import Topic, TopicModel
from tests.helpers import make_settings

PARAMS = TopicParams(umap_components=5, umap_neighbors=5, min_cluster_size=3, min_samples=2,
                     cluster_selection="leaf", seed=0)  # fmt: skip


def _model(groups: list[list[int]], n: int) -> TopicModel:
    assignments = np.full(n, -1, dtype=np.int32)
    for topic, rows in enumerate(groups):
        assignments[rows] = topic
    topics = [Topic(t, f"topic {t}", [], rows) for t, rows in enumerate(groups)]
    return TopicModel(assignments, np.ones(n, dtype=np.float32), topics, PARAMS)


def _vectors(n: int) -> npt.NDArray[np.float32]:
    vectors = np.random.default_rng(0).normal(size=(n, 16)).astype(np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


def _previous(topic_of: dict[str, int], next_id: int) -> PreviousTopics:
    dim_vectors = _vectors(len(topic_of))
    centroids = {t: dim_vectors[i] for i, t in enumerate(sorted(set(topic_of.values())))}
    return PreviousTopics("old", topic_of, centroids, next_id)


def test_same_topics_in_other_order_keep_their_ids() -> None:
    ids = [f"p{i}" for i in range(30)]
    previous = _previous({f"p{i}": 7 if i < 10 else 3 if i < 20 else 12 for i in range(30)}, 13)
    # the refit numbers them differently and loses one paper to noise
    model = _model([list(range(10, 20)), list(range(20, 30)), list(range(1, 10))], 30)
    carried = carry_over(model, ids, _vectors(30), previous)
    assert carried.model.assignments[15] == 3
    assert carried.model.assignments[25] == 12
    assert carried.model.assignments[5] == 7
    assert carried.model.assignments[0] == -1
    assert carried.stats["papers_keeping_topic_id"] == round(29 / 30, 4)  # p0 became noise
    assert carried.next_id == 13


def test_split_keeps_id_for_the_larger_part_and_new_id_for_the_rest() -> None:
    ids = [f"p{i}" for i in range(30)]
    previous = _previous({f"p{i}": 4 for i in range(30)}, 5)
    model = _model([list(range(0, 20)), list(range(20, 30))], 30)
    carried = carry_over(model, ids, _vectors(30), previous)
    big, small = carried.model.assignments[0], carried.model.assignments[25]
    assert big == 4
    assert small == 5  # never reuses an id
    assert carried.parents[5] == [(4, 10)]
    assert carried.next_id == 6


def test_merge_records_both_parents() -> None:
    ids = [f"p{i}" for i in range(24)]
    previous = _previous({f"p{i}": 1 if i < 12 else 2 for i in range(24)}, 3)
    model = _model([list(range(24))], 24)
    carried = carry_over(model, ids, _vectors(24), previous)
    merged = int(carried.model.assignments[0])
    assert {p for p, _ in carried.parents[merged]} == {1, 2}


def test_rebuild_with_another_seed_keeps_most_topic_ids(
    built_copy: Path, embedder: Embedder
) -> None:
    settings = make_settings(built_copy, seed=7)
    folder, manifest, made = run_build(settings, lambda: embedder, progress=False)
    assert made
    assert manifest.topic_ids["previous_build"] is not None
    kept = manifest.topic_ids["papers_keeping_topic_id"]
    assert isinstance(kept, float) and kept >= 0.5
    engine = Engine(folder, embedder)
    detail = engine.topic(engine.topics()[0].id)
    assert detail.previous_build == manifest.topic_ids["previous_build"]
    assert detail.parents, "a topic of a rebuild names the topics it came from"
    engine.close()
    assert current_build_dir(settings.builds_dir) == folder
    assert read_manifest(folder).topic_ids == manifest.topic_ids
