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

from service.search.index import exact_scores
from service.search.neighbours import BLOCK, Lists, neighbour_lists

NEIGHBOURS = 5
"""Neighbours checked per paper: a paper with more near-copies than this is rare."""


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
    lists = neighbour_lists(index, vectors, NEIGHBOURS + 1, asked)
    return duplicates_in_lists(lists, asked, vectors, threshold)


def duplicates_in_lists(
    lists: Lists,
    asked: npt.NDArray[np.int64],
    vectors: npt.NDArray[np.float32],
    threshold: float,
) -> list[tuple[int, int, float]]:
    """The pairs :func:`find_duplicates` reports, read off neighbour lists of the ``asked`` rows
    (the first NEIGHBOURS others of each), scored by the stored vectors' exact cosine."""
    pairs: dict[tuple[int, int], float] = {}
    for start in range(0, len(asked), BLOCK):
        block_rows = asked[start : start + BLOCK]
        block = np.asarray(vectors[block_rows], dtype=np.float32)
        listed = lists[0][start : start + BLOCK, : NEIGHBOURS + 1].astype(np.int64)
        scores, found = exact_scores(block, listed, vectors)
        for own, row_scores, row_ids in zip(block_rows.tolist(), scores, found, strict=True):
            for score, other in zip(row_scores.tolist(), row_ids.tolist(), strict=True):
                if other >= 0 and other != own and score >= threshold:
                    pairs[(min(own, other), max(own, other))] = round(float(score), 6)
    return sorted(((a, b, s) for (a, b), s in pairs.items()), key=lambda p: (-p[2], p[0], p[1]))
