"""The vectorised filter (RowIndex) gives exactly the rows the per-row rule lets through, and
filtered answers are the exact scan's: the same rows, in the same order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.query import view as view_module
from service.query.engine import Engine
from service.query.row_filter import GatheredVectors, RowIndex, matches
from service.schemas import PaperFilter, RecommendRequest
from service.search.shortlist import HalfPrecisionRows

DAYS = st.one_of(st.none(), st.sampled_from(["2024-01-05", "2024-06-30", "2025-02-01", "2025"]))
CATEGORIES = st.lists(st.sampled_from(["cs.CL", "cs.LG", "stat.ML", "cs", "math-ph"]), max_size=3)


@given(
    papers=st.lists(st.tuples(DAYS, CATEGORIES, st.integers(-1, 3)), min_size=1, max_size=40),
    since=st.one_of(st.none(), st.sampled_from(["2024-01-01", "2024-06-30", "2025-01-01"])),
    until=st.one_of(st.none(), st.sampled_from(["2024-06-30", "2025-12-31"])),
    wanted=st.sets(st.sampled_from(["cs", "cs.CL", "stat", "stat.ML", "math-ph", "q-bio"])),
    topics=st.sets(st.integers(-1, 3), max_size=2),
)
@settings(max_examples=200)
def test_mask_is_the_per_row_rule(
    papers: list[tuple[str | None, list[str], int]],
    since: str | None,
    until: str | None,
    wanted: set[str],
    topics: set[int],
) -> None:
    days, categories, assigned = zip(*papers, strict=True)
    index = RowIndex(list(days), list(categories))
    mask = index.mask(since, until, wanted, topics, np.asarray(assigned))
    expected = [matches(d, c, t, since, until, wanted, topics) for d, c, t in papers]
    assert mask.tolist() == expected


def _exact(engine: Engine, query: np.ndarray, filters: PaperFilter, n: int) -> list[int]:
    """The reference: every allowed row scored, stably sorted (ties in row order)."""
    allowed = engine.view.allowed(filters)
    assert allowed is not None
    scores = engine.view.vectors_at(allowed.tolist()) @ query
    return [int(r) for r in allowed[np.argsort(-scores, kind="stable")][:n]]


FILTERS = [
    PaperFilter(categories=["cs.LG"]),
    PaperFilter(since="2024-06-01", until="2025-01-31"),
    PaperFilter(categories=["stat"], since="2024-03-01"),
]


def test_filtered_answers_are_the_exact_scans(dated_engine: Engine) -> None:
    engine, view = dated_engine, dated_engine.view
    seed = engine.live.papers[7].id
    row = view.row_of(seed)
    for filters in FILTERS:
        similar = [h.id for h in engine.similar(seed, 8, filters)]
        exact = [r for r in _exact(engine, view.vector(row)[0], filters, 9) if r != row][:8]
        assert similar == [_id(engine, r) for r in exact]
        query = engine.embedder.encode(["language models for retrieval"])[0]  # type: ignore[union-attr]
        dense = [
            h.id
            for h in engine.search("language models for retrieval", 8, "dense", filters=filters)
        ]
        assert dense == [_id(engine, r) for r in _exact(engine, query, filters, 8)]
        request = RecommendRequest(
            positive=[{"id": seed}], limit=5, strategy="average", **filters.model_dump()
        )
        recommended = [h.id for h in engine.recommend(request)]
        reference = [_id(engine, r) for r in _exact(engine, view.vector(row)[0], filters, 6)]
        assert recommended == [i for i in reference if i != seed][:5]


def test_nearest_among_rows_matches_a_full_sort(dated_engine: Engine) -> None:
    view = dated_engine.view
    rows = np.flatnonzero(np.arange(view.size + len(view.live.papers)) % 3 == 0)
    queries = view.vectors_at([1, 2])
    for n in (1, 5, len(rows), len(rows) + 3):
        scores, found = view.nearest(queries, n, rows)
        full = queries @ view.vectors_at(rows.tolist()).T
        order = np.argsort(-full, axis=1, kind="stable")[:, : min(n, len(rows))]
        assert found.tolist() == rows[order].tolist()
        assert np.allclose(scores, np.take_along_axis(full, order, axis=1), atol=1e-5)


def _id(engine: Engine, row: int) -> str:
    return engine.view.hits(np.asarray([1.0]), np.asarray([row]), skip=-1, k=1)[0].id


def test_gathered_vectors_are_the_rows_and_stay_within_budget() -> None:
    vectors = np.arange(40 * 4, dtype=np.float32).reshape(40, 4)
    one_entry = 10 * 4 * 4
    cache = GatheredVectors(budget=2 * one_entry)
    first, second, third = (np.arange(k, 40, 4, dtype=np.int64) for k in range(3))
    for rows in (first, second, first, third, first):
        assert np.array_equal(cache.get(rows, vectors), vectors[rows])
    assert cache.get(first, vectors) is cache.get(first, vectors)  # kept: used most recently
    assert sum(m.nbytes for m in cache._entries.values()) <= cache.budget
    assert len(cache._entries) == 2


def test_many_allowed_rows_are_answered_from_a_shortlist_exactly(
    dated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SHORTLIST_MIN_ROWS allowed rows a float16 shortlist is rescored: the answer is
    still the exact scan's, live rows included."""
    view = dated_engine.view
    rows = np.arange(view.size + len(view.live.papers), dtype=np.int64)
    queries = view.vectors_at([1, 2])
    monkeypatch.setattr(view_module, "SHORTLIST_MIN_ROWS", 8)
    shortlisted = 0
    real_shortlist = HalfPrecisionRows.shortlist

    def counted(self: HalfPrecisionRows, query: np.ndarray, n: int) -> np.ndarray | None:
        nonlocal shortlisted
        found = real_shortlist(self, query, n)
        shortlisted += found is not None
        return found

    monkeypatch.setattr(HalfPrecisionRows, "shortlist", counted)
    for n in (1, 2, 3):
        scores, found = view.nearest(queries, n, rows)
        full = queries @ view.vectors_at(rows.tolist()).T
        order = np.argsort(-full, axis=1, kind="stable")[:, :n]
        assert found.tolist() == rows[order].tolist()
        assert np.allclose(scores, np.take_along_axis(full, order, axis=1), atol=1e-5)
    assert shortlisted == 6  # every query went through a shortlist
