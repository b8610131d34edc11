"""UMAP reduction shared by the clustering space (topics) and the 2-D layout (maps).

Seeded, so the same vectors give the same coordinates. Corpora too small for UMAP's spectral
start fall back to a random start, and tiny ones (a handful of papers) to a plain SVD projection.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]


def svd_project(vectors: Array, n_components: int) -> Array:
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, basis = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ basis[:n_components].T
    out = np.zeros((len(vectors), n_components), dtype=np.float32)
    out[:, : projected.shape[1]] = projected
    return out


def umap_reduce(
    vectors: Array, n_components: int, n_neighbors: int, min_dist: float, seed: int
) -> Array:
    n = len(vectors)
    if n < max(n_components + 2, 6):
        return svd_project(vectors, n_components)
    import umap

    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=max(2, min(n_neighbors, n - 1)),
        min_dist=min_dist,
        metric="cosine",
        init="spectral" if n >= 50 else "random",
        random_state=seed,
    )
    with warnings.catch_warnings():
        # random_state forces single-threaded UMAP; that is the price of reproducible maps.
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden")
        warnings.filterwarnings("ignore", message=".*graph is not fully connected.*")
        reduced = reducer.fit_transform(vectors)
    return np.ascontiguousarray(reduced, dtype=np.float32)
