from __future__ import annotations

import numpy as np

from service.topics.maps import layout_map


def test_map_is_unit_square_and_reproducible() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(80, 24)).astype(np.float32)
    first = layout_map(vectors, n_neighbors=10, seed=5)
    second = layout_map(vectors, n_neighbors=10, seed=5)
    assert first.shape == (80, 2)
    assert first.min() >= 0.0 and first.max() <= 1.0
    np.testing.assert_array_equal(first, second)


def test_tiny_inputs_still_get_coordinates() -> None:
    vectors = np.eye(3, 8, dtype=np.float32)
    coords = layout_map(vectors, n_neighbors=15, seed=0)
    assert coords.shape == (3, 2)
    assert np.isfinite(coords).all()
