"""Placing papers into a build without refitting it: a topic and a map position for each.

Used for live additions (:mod:`service.query.live`), incremental builds
(:mod:`service.build.incremental`) and, against a fit on a sample of a large corpus, for the
rest of that corpus (:mod:`service.topics.sampling`). :func:`assign_batch` is a pure function
of a picklable :class:`PlacementBasis` and a batch, so batches can be mapped over worker
processes.

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

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from service.artifacts import BuildFolder
from service.schemas import NOISE_TOPIC
from service.search.index import search


@dataclass(frozen=True)
class Placement:
    topics: npt.NDArray[np.int32]
    coords: npt.NDArray[np.float32]
    """Map positions."""
    reduced: npt.NDArray[np.float32] | None
    """Positions in the clustering space (None when the build has none)."""


@dataclass(frozen=True)
class PlacementBasis:
    """The fitted papers new ones are placed among: everything :func:`assign_batch` needs.

    Picklable (FAISS indexes and HDBSCAN clusterers pickle), so batches can be placed in other
    processes."""

    index: Any
    """FAISS inner-product index over the fitted papers' embeddings."""
    neighbours: int
    coords: npt.NDArray[np.float32]
    """The fitted papers' map positions."""
    assignments: npt.NDArray[np.int32]
    """The fitted papers' topics (the fallback when there is no clusterer)."""
    reduced: npt.NDArray[np.float32] | None
    clusterer: Any
    topic_of_label: dict[int, int]
    """HDBSCAN's label -> the topic id to report."""
    vote: bool = False
    """Topics by the neighbours' weighted vote (noise being one more candidate) instead of
    ``hdbscan.approximate_predict``, which calls more papers noise than the fit itself did."""


def assign_batch(basis: PlacementBasis, vectors: npt.NDArray[np.float32]) -> Placement:
    """Topics, map and clustering-space positions for a batch of vectors (a pure function)."""
    if not len(vectors):  # e.g. an incremental build that only deletes papers
        reduced = None if basis.reduced is None else basis.reduced[:0].astype(np.float32)
        return Placement(np.zeros(0, np.int32), np.zeros((0, 2), np.float32), reduced)
    k = min(basis.neighbours, basis.index.ntotal)
    scores, rows = search(basis.index, vectors, k)
    weights = _membership_weights(1.0 - scores, k)
    coords = np.einsum("nk,nkd->nd", weights, basis.coords[rows]).astype(np.float32)
    if basis.clusterer is None or basis.reduced is None:
        topics = basis.assignments[rows[:, 0]].astype(np.int32)
        return Placement(topics, coords, None)
    import hdbscan

    reduced = np.einsum("nk,nkd->nd", weights, basis.reduced[rows]).astype(np.float32)
    if basis.vote:
        return Placement(_weighted_vote(basis.assignments[rows], weights), coords, reduced)
    labels, _ = hdbscan.approximate_predict(basis.clusterer, reduced)
    topics = np.array(
        [basis.topic_of_label.get(int(label), NOISE_TOPIC) for label in labels], dtype=np.int32
    )
    return Placement(topics, coords, reduced)


Batches = list[npt.NDArray[np.float32]]
MapFn = Callable[[Callable[[npt.NDArray[np.float32]], Placement], Batches], Iterable[Placement]]
"""How batches are placed: ``map_fn(place_one_batch, batches)`` gives one Placement per batch,
in order. :func:`local_map` by default; a distributed engine can map over workers instead."""


def local_map(
    place: Callable[[npt.NDArray[np.float32]], Placement],
    batches: Batches,
    progress: bool = True,
) -> list[Placement]:
    """Place the batches one after another in this process, with a progress bar."""
    from tqdm import tqdm

    shown = tqdm(batches, desc="assign", unit="batch", leave=False, disable=not progress)
    return [place(batch) for batch in shown]


def assign_all(
    basis: PlacementBasis,
    vectors: npt.NDArray[np.float32],
    batch_size: int = 4096,
    map_fn: MapFn = local_map,
) -> Placement:
    """:func:`assign_batch` over ``vectors`` in batches, mapped by ``map_fn``, joined in order."""
    batches = [vectors[i : i + batch_size] for i in range(0, len(vectors), batch_size)]
    parts = list(map_fn(partial(assign_batch, basis), batches))
    if not parts:
        dims = 0 if basis.reduced is None else basis.reduced.shape[1]
        return Placement(
            np.empty(0, dtype=np.int32),
            np.empty((0, 2), dtype=np.float32),
            None if basis.reduced is None else np.empty((0, dims), dtype=np.float32),
        )
    reduced = [p.reduced for p in parts if p.reduced is not None]
    return Placement(
        np.concatenate([p.topics for p in parts]),
        np.concatenate([p.coords for p in parts]),
        np.concatenate(reduced) if reduced else None,
    )


class Placer:
    """Places new vectors against one published build (see the module docstring)."""

    def __init__(self, build: BuildFolder, neighbours: int) -> None:
        manifest = build.manifest()
        self.build_id = manifest.build_id
        fitted = build.has_placement_basis()
        self.basis = PlacementBasis(
            index=build.index(manifest),
            neighbours=neighbours,
            coords=build.map_coords(),
            assignments=build.assignments(),
            reduced=build.reduced() if fitted else None,
            clusterer=build.clusterer() if fitted else None,
            topic_of_label=build.topics().hdbscan_to_topic,
        )

    def place(self, vectors: npt.NDArray[np.float32]) -> Placement:
        return assign_batch(self.basis, vectors)


def _weighted_vote(
    candidates: npt.NDArray[np.int32], weights: npt.NDArray[np.float32]
) -> npt.NDArray[np.int32]:
    """Per row, the candidate value with the largest summed weight (ties: the smallest value)."""
    values, inverse = np.unique(candidates, return_inverse=True)
    n, k = candidates.shape
    totals = np.zeros((n, len(values)), dtype=np.float64)
    np.add.at(totals, (np.repeat(np.arange(n), k), inverse.ravel()), weights.ravel())
    return np.asarray(values[totals.argmax(axis=1)], dtype=np.int32)


def _membership_weights(distances: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.float32]:
    """UMAP's fuzzy membership strengths of each point to its k neighbours, rows summing to 1
    (as in ``UMAP.transform``)."""
    from umap.umap_ import smooth_knn_dist

    distances = np.maximum(distances, 0).astype(np.float32)
    sigmas, rhos = smooth_knn_dist(distances, float(k), local_connectivity=1.0)
    strengths = np.exp(-np.maximum(distances - rhos[:, None], 0) / sigmas[:, None])
    totals = strengths.sum(axis=1, keepdims=True)
    return np.asarray(strengths / np.maximum(totals, 1e-12), dtype=np.float32)
