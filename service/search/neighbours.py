"""Every paper's nearest neighbours, searched once at build time.

"Papers like this" for a paper of the build is then a lookup instead of an index search: a list
is exactly what the index answers for that paper (the same search, done ahead of time), so the
results are the same, only sooner. The engine merges papers added live into a list at query
time, and searches the index as before when deleted papers leave a list too short for the
``k`` asked. The build's duplicate check reads the first few entries of the same lists.
"""

from __future__ import annotations

import faiss
import numpy as np
import numpy.typing as npt

from service.search.index import search

LIST_DEPTH = 32
"""Rows kept per paper (its own row usually among them): like-this up to k = 31 is a lookup."""
MAX_LISTED_PAPERS = 2_000_000
"""Above this, lists (8 bytes x LIST_DEPTH a paper) are not kept and like-this searches."""
BLOCK = 4096

Lists = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]
"""(rows, scores), one line per paper, best first; rows of -1 pad short lists."""


def neighbour_lists(
    index: faiss.Index,
    vectors: npt.NDArray[np.float32],
    depth: int,
    rows: npt.NDArray[np.int64] | None = None,
    stored: npt.NDArray[np.float32] | None = None,
) -> Lists:
    """The ``depth`` nearest rows of each paper (of ``rows`` when given), searched in blocks
    the way the engine searches (``stored``: rescoring a product-quantised index's candidates)."""
    asked = np.arange(len(vectors)) if rows is None else rows
    found_rows = np.full((len(asked), depth), -1, dtype=np.int64)
    found_scores = np.zeros((len(asked), depth), dtype=np.float32)
    for start in range(0, len(asked), BLOCK):
        block = np.asarray(vectors[asked[start : start + BLOCK]], dtype=np.float32)
        scores, found = search(index, block, depth, stored)
        found_rows[start : start + len(block), : found.shape[1]] = found
        found_scores[start : start + len(block), : scores.shape[1]] = scores
    return found_rows, found_scores
