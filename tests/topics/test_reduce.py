"""service.topics.reduce: the exact neighbour graph UMAP is given, and maps built on it."""

from __future__ import annotations

import numpy as np
import pytest

from service.topics.maps import layout_map
from service.topics.reduce import EXACT_BELOW, neighbour_graph


def _unit_vectors(n: int, dims: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, dims))
    vectors = centres[rng.integers(0, 8, n)] + 0.3 * rng.normal(size=(n, dims))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def test_small_inputs_leave_neighbours_to_umap() -> None:
    assert neighbour_graph(_unit_vectors(EXACT_BELOW - 1, 8, 0), 15) is None


def test_the_graph_is_the_exact_cosine_neighbours_self_first() -> None:
    vectors = _unit_vectors(EXACT_BELOW + 50, 12, 1)
    graph = neighbour_graph(vectors, 10)
    assert graph is not None
    rows, distances = graph
    assert rows.shape == distances.shape == (len(vectors), 10)
    np.testing.assert_array_equal(rows[:, 0], np.arange(len(vectors)))
    assert (np.diff(distances, axis=1) >= -1e-6).all() and distances.min() >= 0
    probe = np.arange(0, len(vectors), 97)  # brute force on a few rows
    similarity = vectors[probe] @ vectors.T
    expected = np.sort(1.0 - similarity, axis=1)[:, :10]
    np.testing.assert_allclose(distances[probe], np.maximum(expected, 0), atol=1e-5)


@pytest.mark.slow  # two UMAP fits over 4,296 points: about 20 s
def test_maps_on_a_shared_graph_are_reproducible_and_match_computing_it_inside() -> None:
    vectors = _unit_vectors(EXACT_BELOW + 200, 16, 2)
    graph = neighbour_graph(vectors, 12)
    shared = layout_map(vectors, n_neighbors=12, seed=3, graph=graph)
    inside = layout_map(vectors, n_neighbors=12, seed=3)
    assert shared.shape == (len(vectors), 2)
    np.testing.assert_array_equal(shared, inside)
