from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given
from hypothesis import strategies as st

from service.schemas import TopicParams
from service.topics.cluster import default_sizes, fit_topics, group_count


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


@given(st.integers(min_value=4, max_value=2_000))
def test_group_count_is_a_map_sized_coarse_level(topics: int) -> None:
    groups = group_count(topics)
    assert 2 <= groups <= 30 and groups < topics
    if 40 <= topics <= 150:  # a 75k-paper corpus has about 100 topics: 8-30 named groups
        assert 8 <= groups <= 30


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
    names = {t.name for t in model.topics if t.id >= 0}
    assert names == set(phrases)
    assert all(t.name in t.keywords for t in model.topics if t.id >= 0)
    assert model.groups and all(g.name for g in model.groups)
