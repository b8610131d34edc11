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

from service.neighbours import Lists, neighbour_lists

NEIGHBOURS = 5
"""Neighbours checked per paper: a paper with more near-copies than this is rare."""


def find_duplicates(
    index: faiss.Index,
    vectors: npt.NDArray[np.float32],
    threshold: float,
    rows: npt.NDArray[np.int64] | None = None,
) -> list[tuple[int, int, float]]:
    """(row a, row b, cosine) with a < b, most similar first; only pairs involving ``rows``
    when given (an incremental build checks just its new papers)."""
    asked = np.arange(len(vectors)) if rows is None else rows
    return duplicates_in_lists(
        neighbour_lists(index, vectors, NEIGHBOURS + 1, asked), asked, threshold
    )


def duplicates_in_lists(
    lists: Lists, asked: npt.NDArray[np.int64], threshold: float
) -> list[tuple[int, int, float]]:
    """The pairs :func:`find_duplicates` reports, read off neighbour lists of the ``asked`` rows
    (the first NEIGHBOURS others of each)."""
    pairs: dict[tuple[int, int], float] = {}
    for own, row_ids, row_scores in zip(
        asked.tolist(),
        lists[0][:, : NEIGHBOURS + 1].tolist(),
        lists[1][:, : NEIGHBOURS + 1].tolist(),
        strict=True,
    ):
        for other, score in zip(row_ids, row_scores, strict=True):
            if other >= 0 and other != own and score >= threshold:
                pairs[(min(own, other), max(own, other))] = round(float(score), 6)
    return sorted(((a, b, s) for (a, b), s in pairs.items()), key=lambda p: (-p[2], p[0], p[1]))
