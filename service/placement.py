"""Placing papers into a build without refitting it: a topic and a map position for each.

Used for live additions (:mod:`service.live`) and incremental builds (:mod:`service.incremental`).

- **topic**: the paper is put into the build's clustering space (UMAP, ``reduced.npy``) and
  assigned by ``hdbscan.approximate_predict`` with the build's clusterer; noise if no topic
  fits. Builds too small to cluster fall back to the topic of the nearest paper.
- **map position**: where UMAP's own ``transform`` starts a new point: the average of its
  nearest build papers' positions, weighted by UMAP's fuzzy membership strengths
  (``smooth_knn_dist``). UMAP's reducers are not kept with the build: pickling them costs
  minutes and hundreds of MB on large corpora, and the short optimisation ``transform`` runs
  after this start barely moves a single new point among thousands of fixed ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.index import load_index, search
from service.schemas import NOISE_TOPIC


@dataclass(frozen=True)
class Placement:
    topics: npt.NDArray[np.int32]
    coords: npt.NDArray[np.float32]
    """Map positions."""
    reduced: npt.NDArray[np.float32] | None
    """Positions in the clustering space (None when the build has none)."""


class Placer:
    """Places new vectors against one build (see the module docstring)."""

    def __init__(self, build_dir: Path, neighbours: int) -> None:
        from service.build import read_manifest

        manifest = read_manifest(build_dir)
        self.build_id = manifest.build_id
        self.neighbours = neighbours
        self._index = load_index(build_dir / "index.faiss", manifest.index)
        self._map = np.load(build_dir / "map.npy")
        self._assignments = np.load(build_dir / "assignments.npy")
        self._reduced: npt.NDArray[np.float32] | None = None
        self._clusterer: Any = None
        if (build_dir / "reduced.npy").is_file() and (build_dir / "clusterer.joblib").is_file():
            import joblib

            self._reduced = np.load(build_dir / "reduced.npy")
            self._clusterer = joblib.load(build_dir / "clusterer.joblib")  # our own build's file
        raw = json.loads((build_dir / "topics.json").read_text(encoding="utf-8"))
        self._topic_of_label = {int(k): int(v) for k, v in raw["hdbscan_to_topic"].items()}

    def place(self, vectors: npt.NDArray[np.float32]) -> Placement:
        k = min(self.neighbours, self._index.ntotal)
        scores, rows = search(self._index, vectors, k)
        weights = _membership_weights(1.0 - scores, k)
        coords = np.einsum("nk,nkd->nd", weights, self._map[rows]).astype(np.float32)
        if self._clusterer is None or self._reduced is None:
            topics = self._assignments[rows[:, 0]].astype(np.int32)
            return Placement(topics, coords, None)
        import hdbscan

        reduced = np.einsum("nk,nkd->nd", weights, self._reduced[rows]).astype(np.float32)
        labels, _ = hdbscan.approximate_predict(self._clusterer, reduced)
        topics = np.array(
            [self._topic_of_label.get(int(label), NOISE_TOPIC) for label in labels], dtype=np.int32
        )
        return Placement(topics, coords, reduced)


def _membership_weights(distances: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.float32]:
    """UMAP's fuzzy membership strengths of each point to its k neighbours, rows summing to 1
    (as in ``UMAP.transform``)."""
    from umap.umap_ import smooth_knn_dist

    distances = np.maximum(distances, 0).astype(np.float32)
    sigmas, rhos = smooth_knn_dist(distances, float(k), local_connectivity=1.0)
    strengths = np.exp(-np.maximum(distances - rhos[:, None], 0) / sigmas[:, None])
    totals = strengths.sum(axis=1, keepdims=True)
    return np.asarray(strengths / np.maximum(totals, 1e-12), dtype=np.float32)
