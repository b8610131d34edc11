"""Hybrid retrieval: fuse dense (embedding) and lexical (BM25) rankings into one.

Each side proposes its top ``depth`` papers; for the union of both, the dense score (cosine of
the stored vector to the query vector) and the BM25 score are both known exactly, so a paper found
by one side only is still scored by the other. Two ways to combine them:

- ``rrf``: reciprocal rank fusion, ``sum 1 / (rrf_k + rank)`` over both rankings of the
  candidates; needs no score calibration (the baseline).
- ``weighted``: each score min-max normalised over the candidates, then
  ``dense_weight * dense + (1 - dense_weight) * lexical``; keeps how far apart the scores are,
  which ranks alone lose.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from service.config import Settings
from service.errors import InvalidInput

Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "lexical", "hybrid")
Fusion = Literal["rrf", "weighted"]


@dataclass(frozen=True)
class FusionParams:
    method: Fusion = "weighted"
    dense_weight: float = 0.5
    depth: int = 100
    rrf_k: int = 60


DEFAULT_FUSION = FusionParams()


@dataclass(frozen=True)
class Scored:
    """One result: ``score`` orders results; the parts say where it came from (None: not
    computed in this mode)."""

    row: int
    score: float
    dense: float | None
    lexical: float | None


def _ranks(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """1-based rank of each score, highest first (ties keep candidate order)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def _minmax(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    low, high = float(scores.min()), float(scores.max())
    if high - low < 1e-12:
        return np.zeros(len(scores), dtype=np.float64)
    return (scores.astype(np.float64) - low) / (high - low)


def fuse_scores(
    dense: npt.NDArray[np.float32], lexical: npt.NDArray[np.float32], params: FusionParams
) -> npt.NDArray[np.float64]:
    """Fused score of each candidate from its dense and lexical scores (same order)."""
    if params.method == "rrf":
        return 1.0 / (params.rrf_k + _ranks(dense)) + 1.0 / (params.rrf_k + _ranks(lexical))
    w = params.dense_weight
    return w * _minmax(dense) + (1.0 - w) * _minmax(lexical)


def top_rows(scores: npt.NDArray[np.float32], k: int, skip: Collection[int] = ()) -> list[int]:
    """Rows of the ``k`` highest scores, best first, leaving out ``skip``."""
    wanted = min(k + len(skip), len(scores))
    if wanted <= 0:
        return []
    top = np.argpartition(-scores, wanted - 1)[:wanted]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [int(r) for r in top if int(r) not in skip][:k]


def hybrid(
    dense_rows: Sequence[int],
    query_vector: npt.NDArray[np.float32],
    vectors_of: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float32]],
    lexical_scores: npt.NDArray[np.float32],
    params: FusionParams,
    skip: Collection[int] = (),
) -> list[Scored]:
    """Fuse the dense candidates (from the vector index) with the BM25 top ``params.depth``.

    ``lexical_scores`` holds the BM25 score of every row; ``vectors_of`` gives the stored
    embeddings of some rows (only the candidates' are read). Rows in ``skip`` never appear.
    """
    lexical_rows = [r for r in top_rows(lexical_scores, params.depth, skip) if lexical_scores[r]]
    candidates = list(dict.fromkeys([*(r for r in dense_rows if r not in skip), *lexical_rows]))
    if not candidates:
        return []
    rows = np.asarray(candidates, dtype=np.int64)
    order = np.argsort(rows)  # read the memory-mapped vectors in file order
    dense = np.empty(len(rows), dtype=np.float32)
    dense[order] = np.asarray(vectors_of(rows[order]), dtype=np.float32) @ query_vector
    lexical = lexical_scores[rows].astype(np.float32)
    fused = fuse_scores(dense, lexical, params)
    ranked = np.argsort(-fused, kind="stable")
    return [
        Scored(int(rows[i]), float(fused[i]), float(dense[i]), float(lexical[i])) for i in ranked
    ]


def fusion_params(settings: Settings) -> FusionParams:
    return FusionParams(
        method=settings.fusion,
        dense_weight=settings.fusion_dense_weight,
        depth=settings.fusion_depth,
    )


def parse_mode(text: str) -> Mode:
    for mode in MODES:
        if text == mode:
            return mode
    raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {text!r}")


def parse_modes(text: str) -> list[Mode]:
    """``dense,lexical`` -> the modes, checked (for command-line flags)."""
    chosen = [parse_mode(m.strip()) for m in text.split(",") if m.strip()]
    if not chosen:
        raise InvalidInput("name at least one mode")
    return list(dict.fromkeys(chosen))
