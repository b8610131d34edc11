"""Likely duplicates: pairs of papers whose embeddings are nearly identical.

The same paper ingested twice under two ids, versions of one paper, and copied abstracts all
embed within a hair of each other (cosine >= ``duplicate_threshold``, 0.95 by default). A build
lists every such pair among each paper's nearest neighbours in ``duplicates.json``; the API
answers per paper at query time (live additions included).
"""

from __future__ import annotations

import faiss
import numpy as np
import numpy.typing as npt

from service.index import exact_scores, search

NEIGHBOURS = 5
"""Neighbours checked per paper: a paper with more near-copies than this is rare."""
BLOCK = 4096


def find_duplicates(
    index: faiss.Index,
    vectors: npt.NDArray[np.float32],
    threshold: float,
    rows: npt.NDArray[np.int64] | None = None,
) -> list[tuple[int, int, float]]:
    """(row a, row b, cosine) with a < b, most similar first; only pairs involving ``rows``
    when given (an incremental build checks just its new papers). Scores are the stored vectors'
    cosine, also where a compressed index only approximates it."""
    asked = np.arange(len(vectors)) if rows is None else rows
    pairs: dict[tuple[int, int], float] = {}
    for start in range(0, len(asked), BLOCK):
        block_rows = asked[start : start + BLOCK]
        block = np.asarray(vectors[block_rows], dtype=np.float32)
        scores, found = exact_scores(block, search(index, block, NEIGHBOURS + 1)[1], vectors)
        for own, row_scores, row_ids in zip(block_rows.tolist(), scores, found, strict=True):
            for score, other in zip(row_scores.tolist(), row_ids.tolist(), strict=True):
                if other >= 0 and other != own and score >= threshold:
                    pairs[(min(own, other), max(own, other))] = round(float(score), 6)
    return sorted(((a, b, s) for (a, b), s in pairs.items()), key=lambda p: (-p[2], p[0], p[1]))
