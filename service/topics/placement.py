"""Placing papers into a build without refitting it: a topic and a map position for each.

Used for live additions (:mod:`service.query.live`), incremental builds
(:mod:`service.pipeline.incremental`) and, against a fit on a sample of a large corpus, for the
rest of that corpus (:mod:`service.topics.sampling`). :func:`assign_batch` is a pure function
of a picklable :class:`PlacementBasis` and a batch, so batches can be mapped over worker
processes.

- **topic**: the weighted vote of the paper's nearest fitted papers (embedding space, weights
  as below), where a neighbour HDBSCAN called noise votes for "noise" (:func:`vote`). The paper
  is an ``outlier`` when noise wins (where HDBSCAN would have left it unclustered) and takes
  the topic with the nearest centroid all the same (``assign_outliers``; on labelled arXiv
  papers this matched HDBSCAN's soft membership and UMAP-space centroids and beat the vote, and
  needs nothing but the embeddings: docs/quality.md). Its ``confidence`` is the share of the
  neighbours' vote its topic got. A paper none of whose neighbours in a topic is
  ``far_similarity`` similar stays unclustered (far from every topic). A fit's own outliers
  are assigned the same way (:func:`assign_outliers`), so live additions, incremental builds
  and the papers a sampled fit left out are placed as the fitted papers were.
- **map position**: where UMAP's own ``transform`` starts a new point: the average of its
  nearest build papers' positions, weighted by UMAP's fuzzy membership strengths
  (``smooth_knn_dist``), but of those neighbours only that share the paper's topic
  (:func:`topic_coords`): averaging across topics put papers on the border of two topics in
  the empty space between them, so on a sampled fit (55k of 75k papers placed) the map became a
  haze between its clusters (``paperscope bench map-quality``). A small jitter (a hash of the
  neighbours) keeps placed papers from stacking on one point. UMAP's reducers are not kept with
  the build: pickling them costs minutes and hundreds of MB on large corpora, and the short
  optimisation ``transform`` runs after this start barely moves a single new point among
  thousands of fixed ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from service.artifacts import BuildFolder
from service.schemas import NOISE_TOPIC
from service.search.index import flat_index, search
from service.topics.model import outliers_or_noise


@dataclass(frozen=True)
class Placement:
    topics: npt.NDArray[np.int32]
    coords: npt.NDArray[np.float32]
    """Map positions."""
    reduced: npt.NDArray[np.float32] | None
    """Positions in the clustering space (None when the build has none)."""
    outliers: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    """Where the neighbours' vote says noise (HDBSCAN would have left the paper unclustered)."""
    confidence: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros(0, dtype=np.float32)
    )
    """The share of the neighbours' vote the paper's topic got (0-1)."""


@dataclass(frozen=True)
class Votes:
    topics: npt.NDArray[np.int32]
    outliers: npt.NDArray[np.bool_]
    confidence: npt.NDArray[np.float32]


def vote(
    candidates: npt.NDArray[np.int32],
    weights: npt.NDArray[np.float32],
    assign: bool = True,
    similarity: npt.NDArray[np.float32] | None = None,
    far_below: float = 0.0,
    nearest_topic: npt.NDArray[np.int32] | None = None,
) -> Votes:
    """Each row's topic by its neighbours' weighted vote (weights summing to 1 per row).

    ``candidates``: the neighbours' topics, NOISE_TOPIC for those HDBSCAN called noise. A row is
    an outlier when noise gets at least the best topic's weight; with ``assign`` it takes the
    best topic anyway, else it stays noise. A row far from every topic is an outlier left as
    noise: no neighbour is in a topic, or (``similarity``: the neighbours' cosine similarities)
    none of its best topic's neighbours is at least ``far_below`` similar to it.
    ``nearest_topic``: each row's topic by the nearest centroid, which an outlier takes
    instead of its best-voted topic (it measures better, see docs/quality.md).
    ``confidence``: the weight of the row's topic in the vote (0 for noise)."""
    n = len(candidates)
    if n == 0:
        return Votes(
            np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.float32)
        )
    values, inverse = np.unique(candidates, return_inverse=True)
    k = candidates.shape[1]
    totals = np.zeros((n, len(values)), dtype=np.float64)
    np.add.at(totals, (np.repeat(np.arange(n), k), inverse.ravel()), weights.ravel())
    noise_column = values == NOISE_TOPIC
    noise = totals[:, noise_column].sum(axis=1)
    topical = np.where(noise_column[None, :], -1.0, totals)
    best = topical.argmax(axis=1)  # ties: the smallest topic id
    best_weight = topical[np.arange(n), best]
    far = best_weight <= 0
    outliers = far | (noise >= best_weight)
    if similarity is not None and far_below > 0:
        topical = candidates != NOISE_TOPIC
        far |= np.where(topical, similarity, -np.inf).max(axis=1) < far_below
        outliers |= far
    left = far if assign else outliers
    chosen = values[best]
    if nearest_topic is not None:
        chosen = np.where(outliers, nearest_topic, chosen)
    topics = np.where(left, NOISE_TOPIC, chosen)
    support = ((candidates == topics[:, None]) * weights).sum(axis=1)
    confidence = np.where(topics == NOISE_TOPIC, 0.0, np.clip(support, 0.0, 1.0))
    return Votes(topics.astype(np.int32), outliers, confidence.astype(np.float32))


@dataclass(frozen=True)
class Centroids:
    """Topic centroids in embedding space (L2-normalised), of HDBSCAN's own members."""

    topics: npt.NDArray[np.int32]
    vectors: npt.NDArray[np.float32]

    @classmethod
    def of(
        cls,
        vectors: npt.NDArray[np.float32],
        labels: npt.NDArray[np.int32],
        outliers: npt.NDArray[np.bool_] | None = None,
    ) -> Centroids:
        core = labels != NOISE_TOPIC
        if outliers is not None:
            core &= ~outliers
        ids, inverse = np.unique(labels[core], return_inverse=True)
        sums = np.zeros((len(ids), vectors.shape[1]), dtype=np.float64)
        np.add.at(sums, inverse, np.asarray(vectors[core], dtype=np.float64))
        sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        return cls(ids.astype(np.int32), sums.astype(np.float32))

    def nearest(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.int32] | None:
        if len(self.topics) == 0:
            return None
        nearest: npt.NDArray[np.int32] = self.topics[np.argmax(vectors @ self.vectors.T, axis=1)]
        return nearest


def neighbour_weights(
    index: Any,
    vectors: npt.NDArray[np.float32],
    k: int,
    own_rows: npt.NDArray[np.intp] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The k nearest indexed rows of each vector, their membership weights (rows sum to 1) and
    cosine similarities; ``own_rows``: the indexed row each vector is, left out of its own
    neighbours."""
    skip = own_rows is not None
    k = min(k, index.ntotal - (1 if skip else 0))
    scores, rows = search(index, vectors, k + (1 if skip else 0))
    if own_rows is not None:
        keep = rows != own_rows[:, None]
        # the row itself is normally first; where a duplicate outranks it, drop the last
        keep[keep.all(axis=1), -1] = False
        rows = rows[keep].reshape(len(vectors), k)
        scores = scores[keep].reshape(len(vectors), k)
    return rows, _membership_weights(1.0 - scores, k), scores.astype(np.float32)


def assign_outliers(
    vectors: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int32],
    k: int,
    assign: bool = True,
    far_below: float = 0.0,
) -> Votes:
    """A fit's own papers voted on by their k nearest fitted neighbours (themselves left out):
    HDBSCAN's noise assigned to a topic (``assign``) and flagged, every paper's confidence."""
    n = len(vectors)
    outliers = labels == NOISE_TOPIC
    if n < 2 or outliers.all():
        confidence = np.where(outliers, 0.0, 1.0).astype(np.float32)
        return Votes(labels.astype(np.int32), outliers, confidence)
    rows, weights, similarity = neighbour_weights(flat_index(vectors), vectors, k, np.arange(n))
    nearest = Centroids.of(vectors, labels).nearest(vectors)
    voted = vote(labels[rows].astype(np.int32), weights, assign, similarity, far_below, nearest)
    # HDBSCAN's own topics stand; the vote places its noise and measures every paper's support
    core = ~outliers
    topics = np.where(core | (not assign), labels, voted.topics).astype(np.int32)
    support = ((labels[rows] == labels[:, None]) * weights).sum(axis=1)
    confidence = np.where(core, support, voted.confidence)
    confidence = np.where(topics == NOISE_TOPIC, 0.0, confidence).astype(np.float32)
    return Votes(topics, outliers, np.clip(confidence, 0.0, 1.0).astype(np.float32))


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
    outliers: npt.NDArray[np.bool_] | None = None
    """The fitted papers HDBSCAN called noise (they vote for noise); None: those in no topic."""
    assign: bool = True
    """Outliers take their best topic (else they stay unclustered, as HDBSCAN left them)."""
    far_below: float = 0.0
    """A paper none of whose neighbours in a topic is this similar stays noise."""
    centroids: Centroids | None = None
    """The topics' centroids: an outlier goes to the nearest (None: to its best-voted topic)."""


def assign_batch(basis: PlacementBasis, vectors: npt.NDArray[np.float32]) -> Placement:
    """Topics, map and clustering-space positions for a batch of vectors (a pure function)."""
    if not len(vectors):  # e.g. an incremental build that only deletes papers
        empty = None if basis.reduced is None else basis.reduced[:0].astype(np.float32)
        return Placement(np.zeros(0, np.int32), np.zeros((0, 2), np.float32), empty)
    rows, weights, similarity = neighbour_weights(basis.index, vectors, basis.neighbours)
    reduced = None
    if basis.reduced is not None:
        reduced = np.einsum("nk,nkd->nd", weights, basis.reduced[rows]).astype(np.float32)
    outliers = outliers_or_noise(basis.assignments, basis.outliers)
    candidates = np.where(outliers, NOISE_TOPIC, basis.assignments).astype(np.int32)
    nearest = basis.centroids.nearest(vectors) if basis.centroids is not None else None
    voted = vote(candidates[rows], weights, basis.assign, similarity, basis.far_below, nearest)
    coords = topic_coords(basis.coords, basis.assignments, rows, weights, voted.topics)
    return Placement(voted.topics, coords, reduced, voted.outliers, voted.confidence)


JITTER = 0.4
"""A placed paper moves by up to this share of its same-topic neighbours' spread (per axis)."""


def topic_coords(
    coords: npt.NDArray[np.float32],
    topics: npt.NDArray[np.int32],
    rows: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float32],
    placed: npt.NDArray[np.int32],
) -> npt.NDArray[np.float32]:
    """Map positions of papers placed in topics ``placed``: the weighted mean of their
    neighbours' positions (``rows`` index ``coords`` and ``topics``), counting only the
    neighbours in the paper's topic, moved by a jitter (a hash of ``rows``) within their
    spread. A paper with no neighbour in its topic goes near its topic's median position; one
    left unclustered is placed by all its neighbours."""
    same = (topics[rows] == placed[:, None]) & (placed[:, None] != NOISE_TOPIC)
    own = np.where(same, weights, 0.0)
    total = own.sum(axis=1)
    use = np.where(total[:, None] > 0, own / np.maximum(total[:, None], 1e-12), weights)
    spots = coords[rows].astype(np.float64)
    middle = np.einsum("nk,nkd->nd", use, spots)
    spread = np.sqrt(np.einsum("nk,nkd->nd", use, (spots - middle[:, None, :]) ** 2))
    lost = (total <= 0) & (placed != NOISE_TOPIC)
    for topic in np.unique(placed[lost]):
        members = coords[topics == topic]
        if len(members):
            middle[lost & (placed == topic)] = np.median(members, axis=0)
            spread[lost & (placed == topic)] = members.std(axis=0)
    return np.asarray(middle + _noise(rows) * JITTER * spread, dtype=np.float32)


def _noise(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Two numbers in [-1, 1) per row, a hash of its neighbour rows (splitmix64): the same for
    a paper however the papers are batched."""
    key = (rows.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)).sum(axis=1, dtype=np.uint64)
    columns = []
    for salt in (1, 2):
        z = key + np.uint64(salt * 0x9E3779B97F4A7C15 % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        columns.append((z >> np.uint64(11)).astype(np.float64) / 2.0**53 * 2.0 - 1.0)
    return np.stack(columns, axis=1)


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
        np.concatenate([p.outliers for p in parts]),
        np.concatenate([p.confidence for p in parts]),
    )


class Placer:
    """Places new vectors against one published build (see the module docstring)."""

    def __init__(self, build: BuildFolder, neighbours: int) -> None:
        manifest = build.manifest()
        self.build_id = manifest.build_id
        assignments, outliers = build.assignments(), build.outliers()
        self.basis = PlacementBasis(
            index=build.index(manifest),
            neighbours=neighbours,
            coords=build.map_coords(),
            assignments=assignments,
            reduced=build.reduced(),
            clusterer=None,  # placement votes; HDBSCAN's clusterer is not needed
            topic_of_label=build.topics().hdbscan_to_topic,
            outliers=outliers,
            assign=manifest.topics.assign_outliers,
            far_below=manifest.topics.far_similarity,
            centroids=Centroids.of(build.embeddings(), assignments, outliers),
        )

    def place(self, vectors: npt.NDArray[np.float32]) -> Placement:
        return assign_batch(self.basis, vectors)


def _membership_weights(distances: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.float32]:
    """UMAP's fuzzy membership strengths of each point to its k neighbours, rows summing to 1
    (as in ``UMAP.transform``)."""
    from umap.umap_ import smooth_knn_dist

    distances = np.maximum(distances, 0).astype(np.float32)
    sigmas, rhos = smooth_knn_dist(distances, float(k), local_connectivity=1.0)
    strengths = np.exp(-np.maximum(distances - rhos[:, None], 0) / sigmas[:, None])
    totals = strengths.sum(axis=1, keepdims=True)
    return np.asarray(strengths / np.maximum(totals, 1e-12), dtype=np.float32)


KEEP_PREVIOUS_MARGIN = 0.05
"""How much less similar (cosine) than its topic's centroid a refit paper's previous topic may
be and still keep it. Outliers sit between topics, so a refit (another UMAP seed, a different
sample) moved 42% of them on the 74k arXiv set, and HDBSCAN itself moves 12% of the papers it
clusters both times: only 69% of all papers kept their topic id. With this margin for every
paper (in passes, below), 91-92% keep theirs, each still within 0.05 of its best topic, and NMI
against arXiv categories is unchanged (docs/quality.md#topic-ids-across-rebuilds)."""


KEEP_PREVIOUS_PASSES = 3
"""Papers moved back shift their topics' centroids toward the previous build's, which brings
more papers within the margin; the rule is applied again until nothing moves, at most this
many times."""


@dataclass(frozen=True)
class Kept:
    """Papers returned to their previous topic: the new assignments and confidence."""

    assignments: npt.NDArray[np.int32]
    confidence: npt.NDArray[np.float32] | None
    moved: npt.NDArray[np.intp]


def _back_within_margin(
    vectors: npt.NDArray[np.float32],
    assignments: npt.NDArray[np.int32],
    outliers: npt.NDArray[np.bool_],
    previous: npt.NDArray[np.int32],
    margin: float,
) -> npt.NDArray[np.intp]:
    """The rows not in their previous topic whose previous topic's centroid is within
    ``margin`` of their current topic's (centroids of ``assignments``' own core members)."""
    centroids = Centroids.of(vectors, assignments, outliers)
    column = {int(t): j for j, t in enumerate(centroids.topics)}
    rows = np.asarray(
        [
            row
            for row in np.flatnonzero(previous != assignments)
            if int(previous[row]) in column and int(assignments[row]) in column
        ],
        dtype=np.intp,
    )
    if not len(rows):
        return rows
    old = np.array([column[int(previous[r])] for r in rows])
    now = np.array([column[int(assignments[r])] for r in rows])
    similarity = vectors[rows] @ centroids.vectors.T
    picked = np.arange(len(rows))
    within: npt.NDArray[np.intp] = rows[similarity[picked, now] - similarity[picked, old] <= margin]
    return within


def keep_previous_topics(
    vectors: npt.NDArray[np.float32],
    assignments: npt.NDArray[np.int32],
    outliers: npt.NDArray[np.bool_],
    confidence: npt.NDArray[np.float32] | None,
    previous: npt.NDArray[np.int32],
    k: int,
    margin: float = KEEP_PREVIOUS_MARGIN,
) -> Kept:
    """Each paper whose ``previous`` topic (in this build's ids; NOISE_TOPIC: none) still has a
    centroid within ``margin`` of its current topic's goes back to it (hysteresis: a paper on the
    border of two topics does not flip between them from one refit to the next). Centroids are
    of each topic's core members (``outliers`` left out), recomputed after each pass (at most
    :data:`KEEP_PREVIOUS_PASSES`). A moved paper's confidence becomes its new topic's share of
    its k nearest papers' vote."""
    kept = assignments.copy()
    passes: list[npt.NDArray[np.intp]] = [np.zeros(0, dtype=np.intp)]
    for _ in range(KEEP_PREVIOUS_PASSES):
        back = _back_within_margin(vectors, kept, outliers, previous, margin)
        if not len(back):
            break
        kept[back] = previous[back]
        passes.append(back)
    moved = np.sort(np.concatenate(passes)).astype(np.intp)
    if confidence is None or not len(moved):
        return Kept(kept, confidence, moved)
    neighbours, weights, _ = neighbour_weights(flat_index(vectors), vectors[moved], k, moved)
    support = ((kept[neighbours] == kept[moved][:, None]) * weights).sum(axis=1)
    updated = confidence.copy()
    updated[moved] = np.clip(support, 0.0, 1.0)
    return Kept(kept, updated.astype(np.float32), moved)
