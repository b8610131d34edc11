"""Warm starts: a full refit begins from the previous build's layout.

UMAP's result depends on where its optimisation starts. Starting every rebuild from the spectral
embedding lets the whole layout rotate, reflect and reshuffle between builds, and HDBSCAN then
cuts topics differently even when few papers changed, so topic ids and map positions churn.
Started from the previous build's positions (papers new since then from where
:mod:`service.topics.placement` puts them), the optimisation only moves what the new
neighbourhood graph asks for: the fit is still a full fit of the current corpus, but it drifts
instead of jumping.
Turned off by ``PAPERSCOPE_WARM_START=false`` (or when the previous build used another model or
clustering dimension).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.artifacts import MAP, PAPERS, REDUCED, BuildFolder
from service.schemas import BuildManifest
from service.topics.placement import Placer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmStart:
    reduced: npt.NDArray[np.float32]
    """Starting positions in the clustering space."""
    coords: npt.NDArray[np.float32]
    """Starting map positions, in [0, 1] like ``map.npy``."""
    carried: int
    """Papers starting where the previous build had them (the rest were placed)."""


def warm_start(
    previous: Path | None,
    manifest: BuildManifest | None,
    ids: list[str],
    vectors: npt.NDArray[np.float32],
    umap_components: int,
) -> WarmStart | None:
    """Starting positions for every paper from ``previous``, or None for a cold start."""
    if previous is None or manifest is None:
        return None
    build = BuildFolder(previous)
    if build.missing((REDUCED, MAP, PAPERS)):
        return None
    reduced_before = build.reduced()
    if reduced_before is None or reduced_before.shape[1] != umap_components:
        return None
    papers = build.papers()
    try:
        row_of = papers.row_of_id()
    finally:
        papers.close()
    map_before = build.map_coords()
    kept = [(new, row_of[pid]) for new, pid in enumerate(ids) if pid in row_of]
    fresh = np.array([new for new, pid in enumerate(ids) if pid not in row_of], dtype=np.int64)
    reduced = np.empty((len(ids), umap_components), dtype=np.float32)
    coords = np.empty((len(ids), 2), dtype=np.float32)
    if kept:
        new_rows, old_rows = (np.array(c, dtype=np.int64) for c in zip(*kept, strict=True))
        reduced[new_rows] = reduced_before[old_rows]
        coords[new_rows] = map_before[old_rows]
    if len(fresh):
        placement = Placer(build, manifest.topics.umap_neighbors).place(vectors[fresh])
        if placement.reduced is None:
            return None
        reduced[fresh] = placement.reduced
        coords[fresh] = placement.coords
    log.info(
        "warm start from build %s: %d papers where they were, %d placed",
        previous.name,
        len(kept),
        len(fresh),
    )
    return WarmStart(reduced, coords, len(kept))
