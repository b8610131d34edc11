"""Nearest-neighbour index (FAISS, inner product on L2-normalised vectors = cosine similarity).

The index type is chosen from the corpus size: exact search up to ``exact_max`` papers (it is
fast enough there and has perfect recall), HNSW above, with its search breadth raised until
recall@10 against exact search on a sample of the corpus reaches :data:`TARGET_RECALL`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from service.schemas import IndexInfo

TARGET_RECALL = 0.95
HNSW_M = 32
RECALL_SAMPLE = 500


def recall_at_10(index: faiss.Index, vectors: npt.NDArray[np.float32], seed: int = 0) -> float:
    """Share of the exact top-10 that ``index`` finds, for a random sample of corpus vectors."""
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(len(vectors), size=min(RECALL_SAMPLE, len(vectors)), replace=False)]
    k = min(10, len(vectors))
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(sample, k)
    _, found = index.search(sample, k)
    hits = sum(len(set(t) & set(f)) for t, f in zip(truth.tolist(), found.tolist(), strict=True))
    return hits / truth.size


def build_index(
    vectors: npt.NDArray[np.float32], exact_max: int, seed: int = 0
) -> tuple[faiss.Index, IndexInfo]:
    n, dim = vectors.shape
    if n <= exact_max:
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        reason = f"{n} papers <= exact_index_max {exact_max}: exact search is fast enough"
        return index, IndexInfo(type="Flat", reason=reason, recall_at_10=1.0)
    hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 200
    hnsw.add(vectors)
    ef = 64
    while True:
        hnsw.hnsw.efSearch = ef
        recall = recall_at_10(hnsw, vectors, seed)
        if recall >= TARGET_RECALL or ef >= 1024:
            break
        ef *= 2
    reason = (
        f"{n} papers > exact_index_max {exact_max}: HNSW (M={HNSW_M}, efSearch={ef}) "
        f"measured recall@10 {recall:.3f} against exact search"
    )
    info = IndexInfo(type=f"HNSW{HNSW_M}", reason=reason, recall_at_10=recall, ef_search=ef)
    return hnsw, info


def save_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_index(path: Path, info: IndexInfo) -> faiss.Index:
    """Read an index file, restoring the search breadth the build measured its recall with."""
    index = faiss.read_index(str(path))
    if info.ef_search is not None:
        hnsw: Any = faiss.downcast_index(index)
        hnsw.hnsw.efSearch = info.ef_search
    return index


def search(
    index: faiss.Index, queries: npt.NDArray[np.float32], k: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Top-``k`` (scores, rows) per query row; rows of -1 mean fewer than k exist."""
    k = max(1, min(k, index.ntotal))
    scores, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, rows
