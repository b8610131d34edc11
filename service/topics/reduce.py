"""UMAP reduction shared by the clustering space (topics) and the 2-D layout (maps).

Seeded, so the same vectors give the same coordinates. A rebuild may start from the previous
build's positions (a warm start, see :mod:`service.topics.warm`) so that the layout, and with it the
topics, move only as much as the corpus did. Corpora too small for UMAP's spectral
start fall back to a random start, and tiny ones (a handful of papers) to a plain SVD projection.

From :data:`EXACT_BELOW` papers up, UMAP would find neighbours with NN-descent; it is given the
exact ones from FAISS instead (:func:`neighbour_graph`): a seeded NN-descent runs on one core and
compiles for half a minute in every new process, while the exact search takes seconds on both
cores, and one graph serves both the clustering UMAP and the map (on a 20,000-paper sample: 58 s
for the clustering UMAP alone before, 8 s for the graph plus 24 s; docs/quality.md).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]
Graph = tuple[npt.NDArray[np.int64], Array]
"""Each row's nearest rows (itself first) and their cosine distances, as UMAP takes them."""

EXACT_BELOW = 4096
"""Below this many rows UMAP computes every pairwise distance itself (its own cut-off)."""

WARM_EPOCHS = int(os.environ.get("PAPERSCOPE_WARM_EPOCHS", "60"))
"""A warm start needs a short polish, not UMAP's full 200-500 epochs from a spectral start:
those would carry the layout far from where it began."""
WARM_LEARNING_RATE = float(os.environ.get("PAPERSCOPE_WARM_LR", "0.3"))


def svd_project(vectors: Array, n_components: int) -> Array:
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, basis = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ basis[:n_components].T
    out = np.zeros((len(vectors), n_components), dtype=np.float32)
    out[:, : projected.shape[1]] = projected
    return out


def neighbour_graph(vectors: Array, k: int) -> Graph | None:
    """The exact k nearest rows of each row by cosine (vectors are L2-normalised), or None
    where UMAP computes them exactly itself."""
    n = len(vectors)
    if n < EXACT_BELOW:
        return None
    from service.search.index import flat_index, search

    similarity, rows = search(flat_index(vectors), vectors, min(k, n))
    return rows.astype(np.int64), np.maximum(1.0 - similarity, 0.0).astype(np.float32)


def umap_reduce(
    vectors: Array,
    n_components: int,
    n_neighbors: int,
    min_dist: float,
    seed: int,
    init: Array | None = None,
    graph: Graph | None = None,
) -> Array:
    """``init``: starting positions (a warm start from the previous build's layout), else
    UMAP's spectral start. ``graph``: :func:`neighbour_graph` of ``vectors`` with at least
    ``n_neighbors`` columns, when the caller has it (else computed here)."""
    n = len(vectors)
    if n < max(n_components + 2, 6):
        return svd_project(vectors, n_components)
    import umap

    k = max(2, min(n_neighbors, n - 1))
    if graph is None or graph[0].shape[1] < k or len(graph[0]) != n:
        graph = neighbour_graph(vectors, k)
    start: str | Array = "spectral" if n >= 50 else "random"
    tuning: dict[str, float] = {}
    if init is not None and init.shape == (n, n_components):
        start = np.asarray(init, dtype=np.float64)
        tuning = {"n_epochs": WARM_EPOCHS, "learning_rate": WARM_LEARNING_RATE}
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=k,
        min_dist=min_dist,
        metric="cosine",
        init=start,
        random_state=seed,
        precomputed_knn=(None, None, None) if graph is None else (graph[0], graph[1], None),
        **tuning,
    )
    with warnings.catch_warnings():
        # random_state forces single-threaded UMAP; that is the price of reproducible maps.
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden")
        warnings.filterwarnings("ignore", message=".*graph is not fully connected.*")
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        reduced = reducer.fit_transform(vectors)
    return np.ascontiguousarray(reduced, dtype=np.float32)
