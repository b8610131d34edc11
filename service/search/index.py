"""Nearest-neighbour index (FAISS, inner product on L2-normalised vectors = cosine similarity).

The layout is chosen from the corpus size, in three tiers:

- up to ``exact_max`` papers: exact search (``Flat``), fast enough there and perfect recall;
- up to ``compressed_above``: IVF over full vectors, lists found by an HNSW coarse quantizer
  (so assigning a query to its lists does not scan every centroid);
- above: IVF with compressed codes, 8-bit scalar quantisation while the codes fit
  :data:`COMPRESSED_BUDGET_BYTES`, product quantisation (as many bytes a vector as fit) beyond.

IVF layouts are trained on a seeded sample of the corpus and filled chunk by chunk, so memory
stays at the index plus one chunk. The search breadth (``nprobe``) is then raised until recall@10
against exact search, on a held-out sample of the corpus (ground truth computed by streaming the
corpus in chunks), reaches the tier's target. The manifest records the layout and the measured
recall; :func:`load_index` restores the breadth. Builds made with HNSW still load and extend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from service.schemas import IndexInfo

Array = npt.NDArray[np.float32]

TARGET_RECALL = 0.95
"""recall@10 the uncompressed tiers are tuned to."""
COMPRESSED_TARGET_RECALL = 0.90
"""recall@10 the compressed tier is tuned to (product quantisation caps what breadth can buy)."""
COMPRESSED_BUDGET_BYTES = 1_500_000_000
"""Codes of the compressed tier stay under this (the goal: the whole index under 2 GB)."""
PQ_BYTES = (96, 64, 48, 32, 24, 16, 8)
"""Bytes per vector product quantisation may use, most accurate first."""
RECALL_SAMPLE = 500
CHUNK = 65_536
"""Vectors added (and scanned for ground truth) at a time."""
TRAIN_PER_LIST = 40
"""Training vectors per IVF list (faiss asks for at least 39)."""
TRAIN_MAX = 256_000
KMEANS_ITERATIONS = 10
"""k-means iterations for the IVF centroids; faiss's 25 cost 2.5x the time for little recall."""
HNSW_M = 32
MAX_BREADTH = 1024
RERANK = 10
"""Candidates per result a product-quantised index proposes for exact rescoring: its codes alone
reached recall@10 0.82 at any nprobe on 200,000 synthetic vectors."""


@dataclass(frozen=True)
class Layout:
    """What to build: a faiss ``index_factory`` string and why."""

    factory: str
    tier: str
    nlist: int = 0
    target: float = TARGET_RECALL

    @property
    def is_ivf(self) -> bool:
        return self.nlist > 0

    @property
    def reranks(self) -> bool:
        return ",PQ" in self.factory


def ivf_lists(n: int) -> int:
    """IVF lists for n vectors: about 4 sqrt(n), at most one per 39 vectors (k-means needs them)."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


def pq_bytes(n: int, dim: int) -> int:
    """The most bytes per vector (dividing dim) whose codes for n vectors fit the budget."""
    usable = [m for m in PQ_BYTES if dim % m == 0]
    fitting = [m for m in usable if n * (m + 8) <= COMPRESSED_BUDGET_BYTES]
    return (fitting or usable[-1:] or [1])[0]


def pq_code(n: int, dim: int) -> str:
    """Product quantisation for n vectors: 8-bit codes, fewer bits when too few vectors exist to
    train 256 centroids per sub-vector (only tiny corpora with tiny thresholds, as in tests)."""
    bits = min(8, max(1, int(math.log2(max(2, n // 39)))))
    return f"PQ{pq_bytes(n, dim)}" + (f"x{bits}" if bits < 8 else "")


def choose_layout(n: int, dim: int, exact_max: int, compressed_above: int) -> Layout:
    if n <= exact_max:
        return Layout("Flat", "exact")
    nlist = ivf_lists(n)
    if n <= compressed_above:
        return Layout(f"IVF{nlist}_HNSW{HNSW_M},Flat", "ivf", nlist)
    code = "SQ8" if n * (dim + 8) <= COMPRESSED_BUDGET_BYTES else pq_code(n, dim)
    return Layout(f"IVF{nlist}_HNSW{HNSW_M},{code}", "compressed", nlist, COMPRESSED_TARGET_RECALL)


def layout_of(factory: str, nlist: int = 0, target: float = TARGET_RECALL) -> Layout:
    """A layout named explicitly (for measuring alternatives)."""
    return Layout(factory, "chosen", nlist, target)


def train_and_fill(layout: Layout, dim: int, sample: Array, chunks: Iterable[Array]) -> faiss.Index:
    """An empty index of ``layout``, trained on ``sample`` (IVF only), with ``chunks`` added."""
    index = faiss.index_factory(dim, layout.factory, faiss.METRIC_INNER_PRODUCT)
    if layout.is_ivf:
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = KMEANS_ITERATIONS
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    if layout.factory.startswith("HNSW"):  # measured for comparison only
        hnsw: Any = faiss.downcast_index(index)
        hnsw.hnsw.efConstruction = 80
    for chunk in chunks:
        index.add(np.ascontiguousarray(chunk, dtype=np.float32))
    return index


def exact_top10(queries: Array, chunks: Iterable[Array]) -> npt.NDArray[np.int64]:
    """Exact top-10 rows for each query by scanning the corpus chunk by chunk (rows numbered in
    order); memory is one chunk and its exact index."""
    k = 10
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.full((len(queries), k), -1, dtype=np.int64)
    offset = 0
    for chunk in chunks:
        exact = faiss.IndexFlatIP(queries.shape[1])
        exact.add(np.ascontiguousarray(chunk, dtype=np.float32))
        scores, rows = exact.search(queries, min(k, exact.ntotal))
        all_scores = np.hstack([best_scores, scores])
        all_rows = np.hstack([best_rows, np.where(rows >= 0, rows + offset, -1)])
        offset += exact.ntotal
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(all_scores, order, axis=1)
        best_rows = np.take_along_axis(all_rows, order, axis=1)
    return best_rows


def recall(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> float:
    """Share of the (valid) exact neighbours that were found."""
    hits = sum(
        len(set(t[t >= 0].tolist()) & set(f.tolist())) for t, f in zip(truth, found, strict=True)
    )
    return hits / max(1, int((truth >= 0).sum()))


def set_breadth(index: faiss.Index, breadth: int) -> None:
    """Lists probed (IVF, with the HNSW quantizer searching twice as wide) or efSearch (HNSW)."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = min(breadth, ivf.nlist)
        quantizer: Any = faiss.downcast_index(ivf.quantizer)
        if hasattr(quantizer, "hnsw"):
            quantizer.hnsw.efSearch = max(2 * breadth, 16)
    else:
        hnsw: Any = faiss.downcast_index(index)
        hnsw.hnsw.efSearch = breadth


def tune_breadth(
    index: faiss.Index,
    queries: Array,
    truth: npt.NDArray[np.int64],
    target: float,
    start: int = 1,
    stored: Array | None = None,
) -> tuple[int, float]:
    """The smallest breadth (doubling from ``start``) reaching ``target`` recall@10, or the
    widest tried when none does; with its measured recall."""
    ivf = faiss.try_extract_index_ivf(index)
    widest = min(MAX_BREADTH, ivf.nlist) if ivf is not None else MAX_BREADTH
    breadth = min(start, widest)
    while True:
        set_breadth(index, breadth)
        _, found = search(index, queries, 10, stored)
        measured = recall(found, truth)
        if measured >= target or breadth >= widest:
            return breadth, measured
        breadth = min(2 * breadth, widest)


def _chunks(vectors: Array) -> Iterator[Array]:
    for start in range(0, len(vectors), CHUNK):
        yield np.asarray(vectors[start : start + CHUNK], dtype=np.float32)


def _held_out(n: int, seed: int, train: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Rows for the recall sample and, disjoint from them, the training sample."""
    order = np.random.default_rng(seed).permutation(n)
    sample = np.sort(order[: min(RECALL_SAMPLE, n)])
    rest = order[len(sample) :] if n > len(sample) else order
    return sample, np.sort(rest[:train])


def build_index(
    vectors: Array, exact_max: int, compressed_above: int | None = None, seed: int = 0
) -> tuple[faiss.Index, IndexInfo]:
    """The index for ``vectors`` (an array or memory map), its layout chosen by size."""
    n, dim = vectors.shape
    above = compressed_above if compressed_above is not None else n
    layout = choose_layout(n, dim, exact_max, above)
    if not layout.is_ivf:
        index = train_and_fill(layout, dim, vectors[:0], _chunks(vectors))
        reason = f"{n} papers <= exact_index_max {exact_max}: exact search is fast enough"
        return index, IndexInfo(type="Flat", reason=reason, recall_at_10=1.0)
    sample_rows, train_rows = _held_out(n, seed, min(TRAIN_MAX, TRAIN_PER_LIST * layout.nlist))
    index = train_and_fill(layout, dim, vectors[train_rows], _chunks(vectors))
    queries = np.asarray(vectors[sample_rows], dtype=np.float32)
    truth = exact_top10(queries, _chunks(vectors))
    stored = vectors if layout.reranks else None
    nprobe, measured = tune_breadth(index, queries, truth, layout.target, stored=stored)
    why = (
        f"{n} papers > compressed_index_above {above}: compressed codes"
        if layout.tier == "compressed"
        else f"{n} papers > exact_index_max {exact_max}"
    )
    reason = (
        f"{why}; {layout.factory} trained on {len(train_rows)} papers, nprobe {nprobe}: "
        f"recall@10 {measured:.3f} against exact search on {len(sample_rows)} held-out papers"
    )
    info = IndexInfo(
        type=layout.factory,
        reason=reason,
        recall_at_10=measured,
        nprobe=nprobe,
        params={"tier": layout.tier, "nlist": layout.nlist, "trained_on": len(train_rows)},
    )
    return index, info


def remeasure(index: faiss.Index, info: IndexInfo, vectors: Array, seed: int = 0) -> IndexInfo:
    """After adding vectors: recall@10 measured again, the breadth raised if it fell short."""
    if info.type == "Flat":
        return info
    sample_rows, _ = _held_out(len(vectors), seed, 0)
    queries = np.asarray(vectors[sample_rows], dtype=np.float32)
    truth = exact_top10(queries, _chunks(vectors))
    target = COMPRESSED_TARGET_RECALL if info.params.get("tier") == "compressed" else TARGET_RECALL
    start = info.nprobe or info.ef_search or 1
    stored = vectors if reranks(info) else None
    breadth, measured = tune_breadth(index, queries, truth, target, start, stored)
    if info.nprobe is not None:
        return info.model_copy(update={"nprobe": breadth, "recall_at_10": measured})
    return info.model_copy(update={"ef_search": breadth, "recall_at_10": measured})


def reranks(info: IndexInfo) -> bool:
    """Whether searches rescore candidates from the stored vectors (product quantisation: its
    scores are too coarse to rank by; SQ8's are within about 0.001 of exact)."""
    return ",PQ" in info.type


def exact_scores(
    queries: Array, rows: npt.NDArray[np.int64], vectors: Array
) -> tuple[Array, npt.NDArray[np.int64]]:
    """Rescore found rows by the stored vectors' cosine and reorder; -1 rows stay last."""
    valid = rows >= 0
    wanted = np.unique(rows[valid])
    stored = np.asarray(vectors[wanted], dtype=np.float32)
    position = np.searchsorted(wanted, np.where(valid, rows, wanted[0] if len(wanted) else 0))
    scores = np.einsum("qd,qkd->qk", queries, stored[position]) if len(wanted) else rows * 0.0
    scores = np.where(valid, scores, -np.inf).astype(np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


def recall_at_10(index: faiss.Index, vectors: Array, seed: int = 0) -> float:
    """Share of the exact top-10 that ``index`` finds, for a random sample of corpus vectors."""
    sample_rows, _ = _held_out(len(vectors), seed, 0)
    queries = np.asarray(vectors[sample_rows], dtype=np.float32)
    _, found = search(index, queries, 10)
    return recall(found, exact_top10(queries, _chunks(vectors)))


def save_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_index(path: Path, info: IndexInfo) -> faiss.Index:
    """Read an index file, restoring the search breadth the build measured its recall with."""
    index = faiss.read_index(str(path))
    breadth = info.nprobe or info.ef_search
    if breadth is not None:
        set_breadth(index, breadth)
    return index


def flat_index(vectors: Array) -> faiss.Index:
    """An exact inner-product (= cosine, vectors being L2-normalised) index over ``vectors``."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def search(
    index: faiss.Index, queries: Array, k: int, stored: Array | None = None
) -> tuple[Array, npt.NDArray[np.int64]]:
    """Top-``k`` (scores, rows) per query row; rows of -1 mean fewer than k exist. With
    ``stored`` (the corpus vectors; pass them for a product-quantised index, see
    :func:`reranks`), the index proposes :data:`RERANK` x k candidates, rescored exactly."""
    k = max(1, min(k, index.ntotal))
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if stored is None:
        scores, rows = index.search(queries, k)
        return scores, rows
    _, candidates = index.search(queries, min(RERANK * k, index.ntotal))
    scores, rows = exact_scores(queries, candidates, stored)
    return scores[:, :k], rows[:, :k]
