"""Precomputed neighbour lists answer like-this exactly as an index search does."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.artifacts import (
    NEIGHBOUR_ROWS,
    NEIGHBOUR_SCORES,
    BuildFolder,
    current_build_dir,
    read_manifest,
    write_manifest,
)
from service.embed.backends import Embedder
from service.query.engine import Engine
from service.query.view import LiveBatch
from service.search.index import build_index, search
from service.search.neighbours import neighbour_lists
from tests.helpers import make_settings


def _engines(built_copy: Path, embedder: Embedder) -> tuple[Engine, Engine]:
    """The same build twice: with its lists, and copied without them (so it searches)."""
    build = current_build_dir(make_settings(built_copy).builds_dir)
    assert build is not None
    bare = build.parent / "bare"
    shutil.copytree(build, bare)
    (bare / NEIGHBOUR_ROWS).unlink()
    (bare / NEIGHBOUR_SCORES).unlink()
    write_manifest(bare, read_manifest(bare))  # as a build made without lists
    return Engine(build, embedder), Engine(bare, embedder)


def test_a_build_keeps_lists_that_match_its_index(built_dir: Path) -> None:
    build = current_build_dir(make_settings(built_dir).builds_dir)
    assert build is not None
    lists = BuildFolder(build).neighbour_lists()
    assert lists is not None
    vectors = np.load(build / "embeddings.npy")
    index, _ = build_index(vectors, exact_max=1000)
    scores, rows = search(index, vectors, lists[0].shape[1])
    assert np.array_equal(lists[0], rows)
    assert np.allclose(lists[1], scores)


@pytest.mark.parametrize("k", [1, 10, 31, 60])
def test_like_this_is_the_same_with_or_without_lists(
    built_copy: Path, embedder: Embedder, k: int
) -> None:
    listed, searched = _engines(built_copy, embedder)
    for paper_id in listed.paper_ids:
        assert listed.similar(paper_id, k) == searched.similar(paper_id, k)


def test_lists_follow_deletions_and_live_additions(built_copy: Path, embedder: Embedder) -> None:
    listed, searched = _engines(built_copy, embedder)
    ids = listed.paper_ids
    first = listed.similar(ids[0], 10)
    gone = [hit.id for hit in first[:25:2]]  # every other neighbour of the first paper
    near = listed.view.row_of(first[0].id)
    copy = listed.view.papers_at([near])[near].model_copy(update={"id": "live:near-copy"})
    vector = np.asarray(listed.view.vectors_at([listed.view.row_of(ids[0])]))
    for engine in (listed, searched):
        engine.hide(gone)
        engine.add_live(
            LiveBatch(
                [copy],
                vector,
                np.array([-1], dtype=np.int32),
                np.zeros((1, 2), dtype=np.float32),
                ["2026-01-01T00:00:00"],
            )
        )
    for paper_id in [i for i in ids if i not in gone]:
        for k in (5, 10, 25):
            answer = listed.similar(paper_id, k)
            assert answer == searched.similar(paper_id, k)
            assert not {hit.id for hit in answer} & set(gone)
    assert listed.similar(ids[0], 3)[0].id == "live:near-copy"


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=80),
    depth=st.integers(min_value=1, max_value=40),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_lists_are_sorted_and_padded(n: int, depth: int, seed: int) -> None:
    vectors = np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index, _ = build_index(vectors, exact_max=1000)
    rows, scores = neighbour_lists(index, vectors, depth)
    assert rows.shape == scores.shape == (n, depth)
    valid = rows >= 0
    assert valid.sum(axis=1).tolist() == [min(n, depth)] * n
    assert all(np.all(np.diff(line[ok]) <= 1e-6) for line, ok in zip(scores, valid, strict=True))
    assert set(rows[valid].tolist()) <= set(range(n))
