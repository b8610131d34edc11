"""The topic model's small helpers (service/topics/model.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from service.topics.model import merged_rows


@given(st.lists(st.integers(0, 1), min_size=1, max_size=40), st.integers(1, 3))
def test_merged_rows_put_each_part_at_its_rows(owner: list[int], width: int) -> None:
    """Rows split between two parts in any way come back whole, each from its own part."""
    n = len(owner)
    expected = np.arange(n * width, dtype=np.float32).reshape(n, width)
    parts = [np.flatnonzero(np.asarray(owner) == k).astype(np.int64) for k in (0, 1)]
    merged = merged_rows(n, [(rows, expected[rows]) for rows in parts], np.float32)
    assert merged.dtype == np.float32 and merged.shape == (n, width)
    np.testing.assert_array_equal(merged, expected)


def test_a_scalar_part_fills_its_rows() -> None:
    rows = np.array([1, 3], dtype=np.int64)
    merged = merged_rows(4, [(np.array([0, 2], dtype=np.int64), [0.5, 0.25]), (rows, 1.0)], float)
    assert merged.tolist() == [0.5, 1.0, 0.25, 1.0]
