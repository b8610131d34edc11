"""The 2-D map layout: its own UMAP fit on the embeddings (not the clustering space).

A looser ``min_dist`` than clustering spreads points out so a reader can hover them; coordinates
are scaled to [0, 1] so the web page need not know the corpus.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.topics.reduce import Graph, umap_reduce

MAP_MIN_DIST = 0.1


INIT_SCALE = 10.0
"""A warm start's [0, 1] map is stretched to the span UMAP's own spectral start uses."""


def layout_map(
    vectors: npt.NDArray[np.float32],
    n_neighbors: int,
    seed: int,
    init: npt.NDArray[np.float32] | None = None,
    graph: Graph | None = None,
) -> npt.NDArray[np.float32]:
    """(n, 2) float32 coordinates in [0, 1], reproducible for a given seed (and start).
    ``graph``: the vectors' neighbour graph, when the caller shares one with the topics."""
    start = None if init is None else init * INIT_SCALE
    coords = umap_reduce(vectors, 2, n_neighbors, MAP_MIN_DIST, seed, start, graph)
    low = coords.min(axis=0)
    span = np.maximum(coords.max(axis=0) - low, 1e-9)
    return np.asarray((coords - low) / span, dtype=np.float32)
