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
from service.schemas import NOISE_TOPIC
from service.topics.placement import (
    Placer,
    assign_all,
    assign_batch,
    assign_outliers,
    topic_coords,
    vote,
)
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
    st.booleans(),
)
def test_a_vote_picks_the_topic_with_the_most_weight_and_flags_noise_wins(
    labels: npt.NDArray[np.int32], all_weights: npt.NDArray[np.float32], assign: bool
) -> None:
    weights = all_weights[: len(labels)]
    weights = weights / weights.sum(axis=1, keepdims=True)
    voted = vote(labels, weights, assign)
    for row in range(len(labels)):
        totals = {int(v): float(weights[row][labels[row] == v].sum()) for v in labels[row]}
        noise = totals.pop(NOISE_TOPIC, 0.0)
        topic, outlier = int(voted.topics[row]), bool(voted.outliers[row])
        assert 0.0 <= voted.confidence[row] <= 1.0
        if not totals:  # no neighbour in a topic: far from every topic, left unclustered
            assert topic == NOISE_TOPIC and outlier and voted.confidence[row] == 0
            continue
        best = max(totals.values())
        assert outlier == (noise >= best - 1e-6) or abs(noise - best) < 1e-5
        if outlier and not assign:
            assert topic == NOISE_TOPIC
            continue
        assert topic in totals and totals[topic] >= best - 1e-5
        assert abs(float(voted.confidence[row]) - totals[topic]) < 1e-5


def test_a_fits_outliers_are_assigned_and_its_topics_kept() -> None:
    """HDBSCAN's topics stand; its noise goes to the topic of its nearest neighbours."""
    rng = np.random.default_rng(0)
    centres = np.eye(8, dtype=np.float32)[:3]
    vectors = np.vstack([c + 0.05 * rng.standard_normal((20, 8)) for c in centres])
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    labels = np.repeat(np.arange(3), 20).astype(np.int32)
    noise = np.array([0, 21, 45])
    labels[noise] = NOISE_TOPIC
    voted = assign_outliers(vectors, labels, k=8)
    assert voted.topics[noise].tolist() == [0, 1, 2]
    assert voted.outliers[noise].all() and voted.outliers.sum() == 3
    assert np.array_equal(voted.topics[labels >= 0], labels[labels >= 0])
    assert ((voted.confidence > 0.5) & (voted.confidence <= 1)).all()
    raw = assign_outliers(vectors, labels, k=8, assign=False)
    assert np.array_equal(raw.topics, labels)


def test_an_outlier_far_from_every_topic_stays_unclustered() -> None:
    rng = np.random.default_rng(1)
    group = np.zeros((10, 4), dtype=np.float32)
    group[:, :2] = 1 + 0.05 * rng.standard_normal((10, 2))
    stray = np.array([[0, 0, 1, 0], [0.9, 1, 0.1, 0]], dtype=np.float32)  # far, then near
    vectors = np.vstack([group, stray])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.array([0] * 10 + [NOISE_TOPIC] * 2, dtype=np.int32)
    voted = assign_outliers(vectors, labels, k=5, far_below=0.3)
    assert voted.topics[-2:].tolist() == [NOISE_TOPIC, 0]
    assert voted.outliers[-2:].all() and voted.confidence[-2] == 0
    assert assign_outliers(vectors, labels, k=5).topics[-2] == 0  # no floor: assigned


def _unit_rows(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    unit: npt.NDArray[np.float32] = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(
        np.float32
    )
    return unit


def test_papers_near_their_previous_topic_keep_it_and_papers_clearly_elsewhere_move() -> None:
    from service.topics.placement import keep_previous_topics

    rng = np.random.default_rng(0)
    a, b = np.eye(8)[0], np.eye(8)[1]
    core = np.vstack(
        [a + 0.05 * rng.standard_normal((20, 8)), b + 0.05 * rng.standard_normal((20, 8))]
    )
    between = 0.495 * a + 0.505 * b  # a hair nearer b: placed in b, was in a
    near_b = 0.1 * a + 0.9 * b  # clearly b now, was in a
    vectors = _unit_rows(np.vstack([core, between, near_b]))
    assignments = np.array([0] * 20 + [1] * 20 + [1, 1], dtype=np.int32)
    outliers = np.zeros(42, dtype=bool)
    outliers[40:] = True
    previous = assignments.copy()
    previous[40:] = 0
    previous[0] = 1  # a core paper clearly in topic 0 now stays there
    previous[20] = 0  # a core paper of topic 1 ...
    vectors[20] = _unit_rows(between[None, :])[0]  # ... on the border: back to 0
    confidence = np.ones(42, dtype=np.float32)

    kept = keep_previous_topics(vectors, assignments, outliers, confidence, previous, k=5)

    assert kept.moved.tolist() == [20, 40]
    assert kept.assignments[40] == 0 and kept.assignments[41] == 1 and kept.assignments[0] == 0
    assert kept.assignments[20] == 0
    assert kept.confidence is not None
    assert 0.0 <= kept.confidence[40] < 1.0  # its new topic's share of its neighbours' vote
    assert kept.confidence[41] == 1.0  # untouched papers keep theirs
    again = keep_previous_topics(vectors, kept.assignments, outliers, confidence, previous, 5)
    assert not len(again.moved)  # the passes end where the rule moves nothing more
    none_before = np.full(42, NOISE_TOPIC, dtype=np.int32)
    assert not len(
        keep_previous_topics(vectors, assignments, outliers, confidence, none_before, 5).moved
    )


def test_a_placed_paper_lands_among_its_own_topic_not_between_topics() -> None:
    """Its neighbours sit in two topics far apart on the map: averaging all of them put it in the
    empty space between; placed within its topic, it lands beside that topic's neighbours."""
    rng = np.random.default_rng(0)
    coords = np.vstack([rng.normal(0.2, 0.01, (10, 2)), rng.normal(0.8, 0.01, (10, 2))])
    topics = np.repeat(np.array([0, 1], dtype=np.int32), 10)
    rows = np.array([[0, 1, 2, 10, 11, 12, 13], [10, 11, 12, 13, 14, 0, 1]], dtype=np.int64)
    weights = np.full((2, 7), 1 / 7, dtype=np.float32)
    placed = topic_coords(
        coords.astype(np.float32), topics, rows, weights, np.array([0, 1], np.int32)
    )
    assert np.linalg.norm(placed[0] - coords[:3].mean(axis=0)) < 0.03
    assert np.linalg.norm(placed[1] - coords[10:15].mean(axis=0)) < 0.03
    again = topic_coords(
        coords.astype(np.float32), topics, rows, weights, np.array([0, 1], np.int32)
    )
    assert np.array_equal(placed, again)  # the jitter is seeded


def test_a_paper_with_no_neighbour_in_its_topic_goes_to_the_topics_middle() -> None:
    coords = np.array([[0.1, 0.1], [0.2, 0.1], [0.9, 0.9], [0.8, 0.9]], dtype=np.float32)
    topics = np.array([0, 0, 1, 1], dtype=np.int32)
    rows = np.array([[2, 3], [0, 2]], dtype=np.int64)
    weights = np.full((2, 2), 0.5, dtype=np.float32)
    placed = topic_coords(coords, topics, rows, weights, np.array([0, NOISE_TOPIC], np.int32))
    assert np.allclose(placed[0], [0.15, 0.1], atol=0.05)
    assert np.allclose(placed[1], coords[[0, 2]].mean(axis=0), atol=0.2)  # noise: all neighbours
