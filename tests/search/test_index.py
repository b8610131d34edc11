from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.schemas import IndexInfo
from service.search import index as index_module
from service.search.index import (
    build_index,
    choose_layout,
    exact_top10,
    load_index,
    recall_at_10,
    remeasure,
    reranks,
    save_index,
    search,
)

Array = npt.NDArray[np.float32]


def _unit(n: int, dim: int = 32, seed: int = 0) -> Array:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


def _clustered(n: int, dim: int = 32, seed: int = 0) -> Array:
    """Unit vectors around 40 centres, like embeddings (neighbours are meaningful)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    vectors = (centres[rng.integers(0, 40, n)] + 0.5 * rng.normal(size=(n, dim))).astype(np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


@pytest.fixture(scope="module")
def corpus() -> Array:
    return _clustered(4000)


def test_small_corpus_gets_exact_index_matching_brute_force() -> None:
    vectors = _unit(300)
    index, info = build_index(vectors, exact_max=1000)
    assert info.type == "Flat"
    assert "exact" in info.reason
    scores, rows = search(index, vectors[:5], 10)
    brute = np.argsort(-(vectors[:5] @ vectors.T), axis=1)[:, :10]
    np.testing.assert_array_equal(rows, brute)
    assert rows[:, 0].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(scores[:, 0], 1.0, rtol=1e-5)


def test_layout_tiers_follow_corpus_size() -> None:
    assert choose_layout(20_000, 384, 20_000, 500_000).factory == "Flat"
    middle = choose_layout(100_000, 384, 20_000, 500_000)
    assert middle.tier == "ivf" and middle.factory.endswith(",Flat") and "_HNSW32" in middle.factory
    assert middle.nlist == round(4 * 100_000**0.5)
    assert choose_layout(1_000_000, 384, 20_000, 500_000).factory.endswith(",SQ8")
    huge = choose_layout(10_000_000, 384, 20_000, 500_000)
    assert huge.tier == "compressed" and huge.factory.endswith(",PQ96") and huge.reranks
    assert index_module.COMPRESSED_BUDGET_BYTES >= 10_000_000 * (96 + 8)
    # past what 96 bytes a vector allow, fewer bytes are used
    assert choose_layout(30_000_000, 384, 20_000, 500_000).factory.endswith(",PQ32")


def test_streamed_ground_truth_matches_brute_force(corpus: Array) -> None:
    queries = corpus[:20]
    blocks = (corpus[i : i + 700] for i in range(0, len(corpus), 700))
    truth = exact_top10(queries, blocks)
    brute = np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(np.sort(truth, axis=1), np.sort(brute, axis=1))


def test_middle_tier_is_ivf_with_recall_recorded_and_restored(
    corpus: Array, tmp_path: Path
) -> None:
    index, info = build_index(corpus, exact_max=1000, compressed_above=10_000)
    assert info.type.startswith("IVF") and info.type.endswith(",Flat")
    assert info.params["tier"] == "ivf"
    assert info.recall_at_10 is not None and info.recall_at_10 >= 0.95
    assert info.nprobe is not None and "held-out" in info.reason
    save_index(index, tmp_path / "index.faiss")
    loaded = load_index(tmp_path / "index.faiss", info)
    assert faiss.extract_index_ivf(loaded).nprobe == info.nprobe
    assert recall_at_10(loaded, corpus) >= 0.95
    assert not reranks(info)


def test_compressed_tier_uses_sq8_while_it_fits(corpus: Array) -> None:
    _, info = build_index(corpus, exact_max=1000, compressed_above=2000)
    assert info.type.endswith(",SQ8") and info.params["tier"] == "compressed"
    assert info.recall_at_10 is not None and info.recall_at_10 >= 0.90


def test_compressed_tier_uses_pq_with_exact_rerank_past_the_budget(
    corpus: Array, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(index_module, "COMPRESSED_BUDGET_BYTES", 4000 * 20)
    index, info = build_index(corpus, exact_max=1000, compressed_above=2000)
    assert ",PQ" in info.type and reranks(info)
    assert info.recall_at_10 is not None and info.recall_at_10 >= 0.90
    save_index(index, tmp_path / "index.faiss")
    loaded = load_index(tmp_path / "index.faiss", info)
    scores, rows = search(loaded, corpus[:50], 10, stored=corpus)
    exact = np.einsum("qd,qkd->qk", corpus[:50], corpus[rows])
    np.testing.assert_allclose(scores, exact, rtol=1e-5, atol=1e-6)  # scores are exact cosines
    assert rows[:, 0].tolist() == list(range(50))


def test_adding_vectors_to_ivf_keeps_recall(corpus: Array) -> None:
    first, later = corpus[:3000], corpus[3000:]
    index, info = build_index(first, exact_max=1000, compressed_above=10_000)
    index.add(later)
    updated = remeasure(index, info, corpus)
    assert index.ntotal == len(corpus)
    assert updated.recall_at_10 is not None and updated.recall_at_10 >= 0.95
    assert updated.nprobe is not None and info.nprobe is not None
    assert updated.nprobe >= info.nprobe
    _, rows = search(index, later[:5], 1)
    assert rows[:, 0].tolist() == list(range(3000, 3005))


def test_hnsw_builds_of_earlier_versions_still_load_and_extend(
    corpus: Array, tmp_path: Path
) -> None:
    hnsw = faiss.IndexHNSWFlat(corpus.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(corpus[:3000])
    save_index(hnsw, tmp_path / "index.faiss")
    info = IndexInfo(type="HNSW32", reason="earlier build", recall_at_10=0.99, ef_search=48)
    loaded = load_index(tmp_path / "index.faiss", info)
    restored: Any = faiss.downcast_index(loaded)
    assert restored.hnsw.efSearch == 48
    loaded.add(corpus[3000:])
    updated = remeasure(loaded, info, corpus)
    assert updated.recall_at_10 is not None and updated.recall_at_10 >= 0.95
    assert updated.ef_search is not None and updated.ef_search >= 48


def test_k_larger_than_corpus_is_clamped() -> None:
    vectors = _unit(4)
    index, _ = build_index(vectors, exact_max=10)
    _, rows = search(index, vectors[:1], 50)
    assert sorted(rows[0].tolist()) == [0, 1, 2, 3]


@pytest.fixture(scope="module")
def built(corpus: Array) -> dict[str, tuple[faiss.Index, IndexInfo]]:
    return {
        "ivf": build_index(corpus, exact_max=1000, compressed_above=10_000),
        "sq8": build_index(corpus, exact_max=1000, compressed_above=2000),
    }


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(["ivf", "sq8"]),
    seed=st.integers(0, 10_000),
    k=st.integers(1, 120),
    rerank=st.booleans(),
)
def test_every_result_is_a_distinct_valid_row_best_first(
    built: dict[str, tuple[faiss.Index, IndexInfo]],
    corpus: Array,
    kind: str,
    seed: int,
    k: int,
    rerank: bool,
) -> None:
    index, _ = built[kind]
    queries = _unit(3, seed=seed)
    scores, rows = search(index, queries, k, stored=corpus if rerank else None)
    assert rows.shape == (3, k)
    for row_scores, row_ids in zip(scores, rows, strict=True):
        found = row_ids[row_ids >= 0]
        assert len(found) == len(set(found.tolist())) and found.max() < len(corpus)
        valid = row_scores[row_ids >= 0]
        assert np.all(np.diff(valid) <= 1e-5)
