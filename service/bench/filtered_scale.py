"""Filtered nearest-neighbour search at scale, on N synthetic 384-d vectors.

``paperscope bench filtered-scale N [SELECTIVITIES]`` generates N clustered unit vectors (the
generator of :mod:`service.bench.index_scale`), and a filter per selectivity (1%, 10%, 50% by
default) keeping random rows: the worst case for an index, whose lists then hold allowed rows
in the same share everywhere (a real category follows the content, and IVF does better).
For each filter and each strategy it times queries one at a time on one thread (as the server
answers them) and measures recall@10 against the exact filtered answer:

- ``exact``: the allowed rows' vectors gathered and scored in one matrix product (what the
  server does today, :meth:`service.query.view.BuildView.nearest`);
- ``sub-index``: the same product over the allowed rows stored together (a per-category copy
  made in advance: no gather, memory per category);
- ``float16 shortlist``: the allowed rows stored together in float16, a shortlist rescored
  exactly (:mod:`service.search.shortlist`, the server's path from 4,096 allowed rows);
- ``ivf+selector``: the build's IVF layout for N (``IVF…_HNSW32,SQ8`` or ``,Flat``) searched
  with a FAISS ``IDSelectorBitmap`` and the measured unfiltered breadth divided by the
  selectivity (the same expected number of allowed candidates as an unfiltered search).

Output: one markdown row per strategy and selectivity: ms/query (median and p99), recall@10.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import faiss
import numpy as np
import numpy.typing as npt
from threadpoolctl import ThreadpoolController

from service.bench.index_scale import DIM, chunks
from service.config import Settings
from service.search.index import (
    TRAIN_MAX,
    TRAIN_PER_LIST,
    choose_layout,
    exact_top10,
    recall,
    set_breadth,
    train_and_fill,
    tune_breadth,
)
from service.search.shortlist import HalfPrecisionRows

Array = npt.NDArray[np.float32]
Rows = npt.NDArray[np.int64]
SELECTIVITIES = (0.01, 0.1, 0.5)
QUERIES = 200


def _timed(
    queries: Array, search: Callable[[Array], Rows]
) -> tuple[list[float], npt.NDArray[np.int64]]:
    times, found = [], []
    for query in queries:
        start = time.perf_counter()
        found.append(search(query[None, :]))
        times.append((time.perf_counter() - start) * 1000)
    return times, np.vstack(found)


def _exact(vectors: Array, allowed: Rows) -> Callable[[Array], Rows]:
    def search(query: Array) -> Rows:
        scores = np.asarray(vectors[allowed]) @ query[0]
        top = np.argpartition(-scores, 9)[:10]
        return allowed[top[np.argsort(-scores[top])]]

    return search


def _sub_index(vectors: Array, allowed: Rows) -> Callable[[Array], Rows]:
    stored = np.ascontiguousarray(vectors[allowed])

    def search(query: Array) -> Rows:
        scores = stored @ query[0]
        top = np.argpartition(-scores, 9)[:10]
        return allowed[top[np.argsort(-scores[top])]]

    return search


def _shortlist(vectors: Array, allowed: Rows) -> Callable[[Array], Rows]:
    half = HalfPrecisionRows(vectors[allowed])
    exact = _exact(vectors, allowed)

    def search(query: Array) -> Rows:
        short = half.shortlist(query[0], 10)
        if short is None:  # near-ties past the shortlist: the exact scan
            return exact(query)
        rows = allowed[short]
        scores = np.asarray(vectors[rows]) @ query[0]
        return rows[np.argsort(-scores, kind="stable")[:10]]

    return search


def _ivf(index: faiss.Index, n: int, allowed: Rows, breadth: int) -> Callable[[Array], Rows]:
    keep = np.zeros(n, dtype=np.bool_)
    keep[allowed] = True
    bitmap = np.packbits(keep, bitorder="little")
    ivf = faiss.extract_index_ivf(index)
    params = faiss.SearchParametersIVF()
    selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
    params.sel = selector
    params.nprobe = min(ivf.nlist, breadth)
    set_breadth(index, params.nprobe)  # the HNSW quantizer's efSearch to match

    def search(query: Array, _kept: object = (bitmap, selector)) -> Rows:
        """(``_kept``: the selector and its bitmap live as long as the search.)"""
        _, rows = index.search(query, 10, params=params)
        return np.asarray(rows[0], dtype=np.int64)

    return search


def measure(n: int, selectivities: tuple[float, ...] = SELECTIVITIES, seed: int = 0) -> None:
    """Print the table (see the module docstring)."""
    ThreadpoolController().limit(limits=1)
    vectors = np.vstack(list(chunks(n, seed)))
    queries = np.vstack(list(chunks(QUERIES, seed, stream=2)))
    defaults = Settings()
    layout = choose_layout(n, DIM, 0, defaults.compressed_index_above)
    started = time.perf_counter()
    wanted = min(n, TRAIN_MAX, TRAIN_PER_LIST * layout.nlist)
    index = train_and_fill(layout, DIM, vectors[:wanted], [vectors])
    truth = exact_top10(queries, chunks(n, seed))
    breadth, reached = tune_breadth(index, queries, truth, layout.target)
    print(
        f"{n:,} vectors: {layout.factory} built in {time.perf_counter() - started:.0f} s, "
        f"unfiltered nprobe {breadth} for recall@10 {reached:.3f}; queries one at a time, "
        "one thread\n"
    )
    print("| strategy | selectivity | ms/query p50 | ms/query p99 | recall@10 |")
    print("|---|---:|---:|---:|---:|")
    rng = np.random.default_rng(seed)
    for share in selectivities:
        allowed = np.flatnonzero(rng.random(n) < share).astype(np.int64)
        strategies = {
            "exact": _exact(vectors, allowed),
            "sub-index": _sub_index(vectors, allowed),
            "float16 shortlist": _shortlist(vectors, allowed),
            "ivf+selector": _ivf(index, n, allowed, math.ceil(breadth / share)),
        }
        reference: npt.NDArray[np.int64] | None = None
        for name, search in strategies.items():
            times, found = _timed(queries, search)
            reference = found if reference is None else reference
            print(
                f"| {name} | {share:.0%} | {np.percentile(times, 50):.2f} | "
                f"{np.percentile(times, 99):.2f} | {recall(found, reference):.3f} |",
                flush=True,
            )
