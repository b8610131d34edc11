from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.index import build_index, load_index, recall_at_10, save_index, search


def _unit(n: int, dim: int = 32, seed: int = 0) -> npt.NDArray[np.float32]:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


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


def test_large_corpus_gets_hnsw_with_measured_recall(tmp_path: Path) -> None:
    vectors = _unit(3000)
    index, info = build_index(vectors, exact_max=1000)
    assert info.type.startswith("HNSW")
    assert info.recall_at_10 is not None and info.recall_at_10 >= 0.95
    save_index(index, tmp_path / "index.faiss")
    loaded = load_index(tmp_path / "index.faiss", info)
    assert recall_at_10(loaded, vectors) >= 0.95


def test_k_larger_than_corpus_is_clamped() -> None:
    vectors = _unit(4)
    index, _ = build_index(vectors, exact_max=10)
    _, rows = search(index, vectors[:1], 50)
    assert sorted(rows[0].tolist()) == [0, 1, 2, 3]
