"""bf16-level noise for the stability column of ``paperscope eval clustering``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.eval.stability import BF16_STEP, agreement, bf16_noise


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(2, 64), st.integers(0, 2**31 - 1))
def test_noise_stays_within_bf16_rounding(rows: int, dim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(rows, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    noisy = bf16_noise(vectors, seed)
    assert noisy.dtype == np.float32 and noisy.shape == vectors.shape
    np.testing.assert_allclose(np.linalg.norm(noisy, axis=1), 1.0, atol=1e-5)
    # each component moved by at most bf16's relative rounding (and the renormalisation)
    assert np.all(np.abs(noisy - vectors) <= 2 * BF16_STEP * np.abs(vectors) + 1e-5)
    assert float(np.sum(noisy * vectors, axis=1).min()) >= 0.9999
    np.testing.assert_array_equal(noisy, bf16_noise(vectors, seed))


def test_noise_moves_every_row_a_little() -> None:
    vectors = np.eye(4, 8, dtype=np.float32) + 0.1
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    noisy = bf16_noise(vectors, 0)
    assert np.all(np.any(noisy != vectors, axis=1))
    assert not np.array_equal(noisy, bf16_noise(vectors, 1))


def test_agreement_is_one_for_relabelled_topics_and_lower_when_papers_move() -> None:
    topics = np.array([0, 0, 1, 1, 2, 2])
    assert agreement(topics, np.array([5, 5, 3, 3, -1, -1])) == 1.0
    assert agreement(topics, np.array([0, 1, 1, 1, 2, 2])) < 1.0
