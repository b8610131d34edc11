"""The collection classifier's parts: the fit, the ranking orders and the threshold note."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given
from hypothesis import strategies as st

from service.query.classifier import (
    MIN_NEGATIVE,
    MIN_POSITIVE,
    enough,
    fit,
    least_sure,
    seeds_note,
    top,
)


def _cloud(centre: list[float], n: int, seed: int) -> npt.NDArray[np.float32]:
    points = np.asarray(centre) + np.random.default_rng(seed).normal(0, 0.1, (n, len(centre)))
    unit: npt.NDArray[np.float32] = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(
        np.float32
    )
    return unit


def test_fit_separates_liked_from_disliked_papers_even_when_few_are_disliked() -> None:
    liked, disliked = _cloud([1, 0, 0, 0], 20, 1), _cloud([0, 1, 0, 0], 3, 2)
    model = fit(liked, disliked)
    assert (model.scores(_cloud([1, 0, 0, 0], 10, 3)) > 0).all()
    assert (model.scores(_cloud([0, 1, 0, 0], 10, 4)) < 0).all()


def test_the_threshold_and_its_note() -> None:
    assert enough(MIN_POSITIVE, MIN_NEGATIVE)
    assert not enough(MIN_POSITIVE - 1, 10) and not enough(10, MIN_NEGATIVE - 1)
    note = seeds_note(1, 2)
    assert "2 more thumbs up" in note and "1 more thumbs down" in note
    assert "thumbs up" not in seeds_note(5, 0) and "3 more thumbs down" in seeds_note(5, 0)


@given(st.lists(st.floats(-5, 5, allow_nan=False, width=32), min_size=1, max_size=40))
def test_top_is_best_first_and_least_sure_is_nearest_the_boundary_first(
    values: list[float],
) -> None:
    scores = np.asarray(values, dtype=np.float32)
    rows = np.arange(len(values), dtype=np.int64) * 3
    k = max(1, len(values) // 2)
    best, best_scores = top(scores, rows, k)
    assert best_scores == sorted(best_scores, reverse=True) and len(best) == k
    assert best_scores[0] == float(scores.max())
    unsure, unsure_scores = least_sure(scores, rows, k)
    assert [abs(s) for s in unsure_scores] == sorted(abs(s) for s in unsure_scores)
    assert abs(unsure_scores[0]) == float(np.abs(scores).min())
    assert set(unsure) <= set(rows.tolist())
