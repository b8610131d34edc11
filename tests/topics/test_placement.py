"""Placing papers against a fit: batching and where the work runs change nothing."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import numpy.typing as npt
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from service.artifacts import BuildFolder, current_build_dir
from service.topics.placement import Placer, _weighted_vote, assign_all, assign_batch
from tests.helpers import make_settings


def _placer_and_vectors(data_dir: Path) -> tuple[Placer, npt.NDArray[np.float32]]:
    build = current_build_dir(make_settings(data_dir).builds_dir)
    assert build is not None
    return Placer(BuildFolder(build), neighbours=11), np.load(build / "embeddings.npy")


def test_placing_in_batches_equals_placing_at_once(built_dir: Path) -> None:
    placer, vectors = _placer_and_vectors(built_dir)
    whole = assign_batch(placer.basis, vectors)
    batched = assign_all(placer.basis, vectors, batch_size=7)
    assert np.array_equal(batched.topics, whole.topics)
    assert np.allclose(batched.coords, whole.coords)
    assert batched.reduced is not None and whole.reduced is not None
    assert np.allclose(batched.reduced, whole.reduced)


def test_a_pickled_basis_places_the_same(built_dir: Path) -> None:
    """What a worker process receives (the basis, pickled) places exactly like the original."""
    placer, vectors = _placer_and_vectors(built_dir)
    copy = pickle.loads(pickle.dumps(placer.basis))  # noqa: S301 (our own bytes)
    here, there = assign_batch(placer.basis, vectors[:30]), assign_batch(copy, vectors[:30])
    assert np.array_equal(here.topics, there.topics)
    assert np.array_equal(here.coords, there.coords)


def test_placing_nothing_gives_empty_arrays(built_dir: Path) -> None:
    placer, _ = _placer_and_vectors(built_dir)
    placed = assign_all(placer.basis, np.empty((0, 384), dtype=np.float32))
    assert placed.topics.shape == (0,) and placed.coords.shape == (0, 2)
    assert placed.reduced is not None and placed.reduced.shape == (0, 5)


@given(
    arrays(np.int32, st.tuples(st.integers(1, 20), st.just(4)), elements=st.integers(-1, 3)),
    arrays(np.float32, (20, 4), elements=st.floats(0.125, 1, width=32)),
)
def test_a_vote_picks_the_candidate_with_the_most_weight(
    labels: npt.NDArray[np.int32], all_weights: npt.NDArray[np.float32]
) -> None:
    weights = all_weights[: len(labels)]
    chosen = _weighted_vote(labels, weights)
    for row, winner in enumerate(chosen):
        assert winner in labels[row]
        totals = {int(v): float(weights[row][labels[row] == v].sum()) for v in labels[row]}
        assert totals[int(winner)] >= max(totals.values()) - 1e-5
