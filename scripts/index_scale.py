"""Measure FAISS index types on N synthetic 384-d vectors; see scripts/index-scale."""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

DIM = 384
CHUNK = 100_000
QUERIES = 1_000
CENTRES = 2_000
Array = npt.NDArray[np.float32]


LATENT = 48
"""Intrinsic dimension: real sentence embeddings vary along far fewer directions than 384."""


def chunks(n: int, seed: int = 0, stream: int = 1) -> Iterator[Array]:
    """N unit vectors: CENTRES cluster centres in a LATENT-dim subspace plus spread within it and
    a little full-dimensional noise, chunk by chunk, reproducibly."""
    setup = np.random.default_rng(seed)
    basis = np.linalg.qr(setup.standard_normal((DIM, LATENT)))[0].T.astype(np.float32)
    centres = setup.standard_normal((CENTRES, LATENT)).astype(np.float32)
    for start in range(0, n, CHUNK):
        rng = np.random.default_rng([seed, stream, start // CHUNK])
        size = min(CHUNK, n - start)
        latent = centres[rng.integers(0, CENTRES, size)] + 0.6 * rng.standard_normal(
            (size, LATENT)
        ).astype(np.float32)
        block = latent @ basis + 0.02 * rng.standard_normal((size, DIM)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        yield block.astype(np.float32)


def queries() -> Array:
    """Held-out queries from the same distribution (not in the corpus)."""
    return next(chunks(QUERIES, stream=2))


def exact_top10(n: int, q: Array) -> npt.NDArray[np.int64]:
    best_scores = np.full((len(q), 10), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(q), 10), dtype=np.int64)
    for i, block in enumerate(chunks(n)):
        scores = q @ block.T
        rows = np.arange(len(block)) + i * CHUNK
        all_scores = np.hstack([best_scores, scores])
        all_rows = np.hstack([best_rows, np.broadcast_to(rows, scores.shape)])
        order = np.argsort(-all_scores, axis=1)[:, :10]
        best_scores = np.take_along_axis(all_scores, order, axis=1)
        best_rows = np.take_along_axis(all_rows, order, axis=1)
    return best_rows


def build(kind: str, n: int) -> faiss.Index:
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    else:
        nlist = int(4 * np.sqrt(n))
        code = {"ivf-sq8": "SQ8", "ivf-pq": "PQ48x8", "ivf-flat": "Flat"}[kind]
        index = faiss.index_factory(DIM, f"IVF{nlist},{code}", faiss.METRIC_INNER_PRODUCT)
        sample = np.vstack([b for _, b in zip(range(3), chunks(n), strict=False)])
        index.train(sample[: min(len(sample), 64 * nlist)])
    for block in chunks(n):
        index.add(block)
    return index


def tune(
    kind: str, index: faiss.Index, q: Array, truth: npt.NDArray[np.int64], target: float
) -> tuple[int, float]:
    """Smallest search breadth reaching the target recall (efSearch or nprobe)."""
    for breadth in (16, 32, 64, 128, 256, 512, 1024):
        if kind == "hnsw":
            index.hnsw.efSearch = breadth
        else:
            faiss.extract_index_ivf(index).nprobe = breadth
        _, found = index.search(q, 10)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)])
        if recall >= target:
            break
    return breadth, float(recall)


def main() -> None:
    n = int(sys.argv[1])
    kinds = (sys.argv[2] if len(sys.argv) > 2 else "hnsw,ivf-sq8").split(",")
    target = float(sys.argv[3]) if len(sys.argv) > 3 else 0.95
    q = queries()
    start = time.perf_counter()
    truth = exact_top10(n, q)
    print(f"{n:,} x {DIM} synthetic vectors; exact ground truth {time.perf_counter() - start:.0f}s")
    print("| index | build s | breadth | recall@10 | q/s 1 thread | index MB | peak RSS GB |")
    print("|---|---|---|---|---|---|---|")
    for kind in kinds:
        faiss.omp_set_num_threads(2)
        start = time.perf_counter()
        index = build(kind, n)
        built = time.perf_counter() - start
        breadth, recall = tune(kind, index, q, truth, target)
        faiss.omp_set_num_threads(1)
        start = time.perf_counter()
        for row in q:
            index.search(row[None, :], 10)
        qps = len(q) / (time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "index.faiss"
            faiss.write_index(index, str(path))
            size = path.stat().st_size / 1e6
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(
            f"| {kind} | {built:.0f} | {breadth} | {recall:.3f} | {qps:,.0f} | {size:,.0f} "
            f"| {rss:.2f} |",
            flush=True,
        )
        del index


if __name__ == "__main__":
    main()
