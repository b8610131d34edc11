from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given
from hypothesis import strategies as st

from service.schemas import TopicParams
from service.topics.cluster import default_sizes, fit_topics


def _blobs(sizes: list[int], dim: int = 48, seed: int = 1) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    parts = [c + 0.08 * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes, strict=True)]
    vectors = np.vstack(parts).astype(np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


def _params(n: int, selection: str = "leaf") -> TopicParams:
    neighbours, size, samples = default_sizes(n)
    return TopicParams(
        umap_components=5,
        umap_neighbors=neighbours,
        min_cluster_size=size,
        min_samples=samples,
        cluster_selection=selection,
        seed=7,
    )


def test_separated_groups_become_topics_with_their_words() -> None:
    sizes = [30, 25, 20]
    vectors = _blobs(sizes)
    words = ["galaxy telescope", "protein folding", "compiler optimisation"]
    texts = [f"{words[g]} observed in sample {i}" for g, n in enumerate(sizes) for i in range(n)]
    model = fit_topics(vectors, texts, _params(len(texts), "eom"), label_terms=3)
    clustered = [t for t in model.topics if t.id >= 0]
    assert len(clustered) == 3
    assert [t.id for t in clustered] == [0, 1, 2]  # ids by size, largest first
    assert [t.size for t in clustered] == sorted((t.size for t in clustered), reverse=True)
    labels = " ".join(t.label for t in clustered)
    for word in ("galaxy", "protein", "compiler"):
        assert word in labels
    # each topic's members are one group, listed closest to the centre first
    for topic in clustered:
        groups = {0 if m < 30 else 1 if m < 55 else 2 for m in topic.members}
        assert len(groups) == 1
    assert model.clusterer is not None and model.clusterer.prediction_data_ is not None


def test_tiny_corpus_is_one_topic() -> None:
    vectors = _blobs([4])
    model = fit_topics(vectors, ["deep learning"] * 4, _params(4), label_terms=3)
    assert [t.id for t in model.topics] == [0]
    assert model.assignments.tolist() == [0, 0, 0, 0]


@given(st.integers(min_value=1, max_value=10_000_000))
def test_default_sizes_stay_in_bounds(n: int) -> None:
    neighbours, size, samples = default_sizes(n)
    assert 5 <= neighbours <= 15
    assert 3 <= size <= 200
    assert 2 <= samples <= size


@given(st.integers(min_value=1, max_value=1_000_000), st.integers(min_value=1, max_value=1_000_000))
def test_default_sizes_grow_with_corpus(a: int, b: int) -> None:
    small, large = sorted((a, b))
    assert default_sizes(small)[1] <= default_sizes(large)[1]


def test_topics_and_groups_get_phrase_names_without_an_embedder() -> None:
    sizes = [30, 25, 20, 20, 15]
    vectors = _blobs(sizes)
    phrases = [
        "galaxy cluster survey",
        "protein folding",
        "compiler optimisation",
        "graph neural networks",
        "speech recognition",
    ]
    texts = [
        f"we study {phrases[g]}. {phrases[g]} matters, item {i}"
        for g, n in enumerate(sizes)
        for i in range(n)
    ]
    model = fit_topics(vectors, texts, _params(len(texts), "eom"), label_terms=3)
    topics = [t for t in model.topics if t.id >= 0]
    assert len(topics) == len(phrases) and model.groups and all(g.name for g in model.groups)
    groups = {g.name for g in model.groups}
    assert groups <= set(phrases)  # each group is named by a phrase of its topics ...
    for topic in topics:  # ... and each topic by a phrase of its own, never its group's name
        own = phrases[next(g for g, end in enumerate(np.cumsum(sizes)) if topic.members[0] < end)]
        assert topic.name not in groups and set(topic.name.split()) & set(own.split()), topic.name
        assert topic.name == topic.keywords[0]


def _blobs_and_strays() -> tuple[npt.NDArray[np.float32], list[str]]:
    """Three tight groups plus scattered papers near one of them, and two far from all."""
    rng = np.random.default_rng(3)
    vectors = _blobs([30, 25, 20])
    near = vectors[rng.choice(75, 12)] + 0.25 * rng.normal(size=(12, 48))
    far = np.zeros((2, 64))
    far[:, 48:] = rng.normal(size=(2, 16))  # orthogonal to every other paper
    grouped = np.hstack([np.vstack([vectors, near]), np.zeros((87, 16))])
    out = np.vstack([grouped, far]).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    texts = [f"paper {i} about topic {i % 5}" for i in range(len(out))]
    return out, texts


def test_outliers_are_assigned_and_flagged() -> None:
    vectors, texts = _blobs_and_strays()
    params = _params(len(texts)).model_copy(update={"far_similarity": 0.3})
    model = fit_topics(vectors, texts, params, label_terms=3)
    assert model.outliers is not None and model.confidence is not None
    assert model.outliers.any()  # HDBSCAN called some papers noise ...
    unclustered = model.assignments == -1
    assert (model.outliers | ~unclustered).all()  # only outliers can be unclustered
    assert unclustered.sum() <= 0.1 * len(texts)
    assert ((model.confidence >= 0) & (model.confidence <= 1)).all()
    assert (model.confidence[unclustered] == 0).all()
    members = sum(t.size for t in model.topics if t.id >= 0)
    assert members == int((~unclustered).sum())  # topic sizes count the assigned papers


def test_raw_hdbscan_output_is_kept_when_outliers_are_not_assigned() -> None:
    vectors, texts = _blobs_and_strays()
    assigned = fit_topics(vectors, texts, _params(len(texts)), label_terms=3)
    raw_params = _params(len(texts)).model_copy(update={"assign_outliers": False})
    raw = fit_topics(vectors, texts, raw_params, label_terms=3)
    assert raw.outliers is not None and assigned.outliers is not None
    assert np.array_equal(raw.assignments == -1, raw.outliers)  # noise stays noise
    assert np.array_equal(raw.outliers, assigned.outliers)  # the same fit underneath
    kept = ~raw.outliers  # HDBSCAN's topics are the same (ids may differ: they go by size)
    pairs = set(
        zip(raw.assignments[kept].tolist(), assigned.assignments[kept].tolist(), strict=True)
    )
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
