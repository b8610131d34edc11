"""Fusion of dense and BM25 scores, checked on small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import InvalidInput
from service.search.fusion import FusionParams, fuse_scores, hybrid, parse_modes, top_rows

DENSE = np.array([0.9, 0.5, 0.1], dtype=np.float32)
LEXICAL = np.array([0.0, 10.0, 5.0], dtype=np.float32)


def test_weighted_fusion_is_a_convex_combination_of_min_max_scores() -> None:
    fused = fuse_scores(DENSE, LEXICAL, FusionParams("weighted", dense_weight=0.5))
    np.testing.assert_allclose(fused, [0.5, 0.75, 0.25])
    dense_only = fuse_scores(DENSE, LEXICAL, FusionParams("weighted", dense_weight=1.0))
    np.testing.assert_allclose(dense_only, [1.0, 0.5, 0.0])


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = fuse_scores(DENSE, LEXICAL, FusionParams("rrf", rrf_k=60))
    expected = [1 / 61 + 1 / 63, 1 / 62 + 1 / 61, 1 / 63 + 1 / 62]
    np.testing.assert_allclose(fused, expected)


def test_top_rows_skips_rows_and_keeps_k() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7], dtype=np.float32)
    assert top_rows(scores, 2) == [1, 3]
    assert top_rows(scores, 2, skip={1}) == [3, 2]
    assert top_rows(scores, 10) == [1, 3, 2, 0]


def test_hybrid_scores_every_candidate_both_ways() -> None:
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6]], dtype=np.float32)
    query = np.array([1.0, 0.0], dtype=np.float32)
    lexical = np.array([0.0, 0.0, 4.0, 1.0], dtype=np.float32)
    params = FusionParams("weighted", dense_weight=0.5, depth=2)
    fused = hybrid([0, 3], query, vectors.__getitem__, lexical, params)
    # row 2 comes from BM25 only, yet gets its exact dense score (cosine 0)
    assert {s.row for s in fused} == {0, 2, 3}
    by_row = {s.row: s for s in fused}
    assert by_row[2].dense == pytest.approx(0.0) and by_row[2].lexical == 4.0
    assert by_row[3].dense == pytest.approx(0.8)
    assert [s.score for s in fused] == sorted((s.score for s in fused), reverse=True)
    hidden = hybrid([0, 3], query, vectors.__getitem__, lexical, params, skip={3})
    assert 3 not in {s.row for s in hidden}


def test_parse_modes() -> None:
    assert parse_modes("lexical, dense,lexical") == ["lexical", "dense"]
    with pytest.raises(InvalidInput, match="mode must be one of"):
        parse_modes("dense,semantic")
    with pytest.raises(InvalidInput):
        parse_modes(" , ")
