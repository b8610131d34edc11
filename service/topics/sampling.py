"""Topics and map for large corpora: fit on a seeded random sample, assign every other paper.

UMAP and HDBSCAN dominate a large build (`paperscope bench topic-sample` measures it). Above
``topic_sample_above`` papers a build therefore:

1. draws ``topic_sample_size`` papers at random (seeded, so rebuilds draw the same sample);
2. fits the clustering UMAP + HDBSCAN and the 2-D map on them exactly as a full fit does, with
   ``min_cluster_size`` and ``min_samples`` scaled by the sample's share of the corpus (a topic
   of 137 papers in the corpus has about 37 in a 20,000 sample of 75,000), so the sample is cut
   into topics as fine as the corpus would be;
3. places every other paper as live additions are placed (:mod:`service.topics.placement`: positions
   from its nearest sampled papers), batch by batch through ``map_fn`` (a local loop by
   default; a distributed engine can be plugged in); its topic is the weighted vote of those
   neighbours, the sample's outliers voting for noise: a paper noise wins for is an outlier and
   is assigned its best topic, as the sample's own outliers are;
4. numbers and labels the topics over all papers' assignments, so labels, representatives and
   groups describe the whole corpus.

Sampled papers keep the topic and positions the fit gave them. The build's artifacts cover every
paper (``reduced.npy``, ``map.npy``, ``assignments.npy``); the clusterer's prediction data covers
the sample, which is all ``hdbscan.approximate_predict`` needs to place papers later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

from service.runtime import start_elsewhere
from service.schemas import TopicParams
from service.search.index import flat_index
from service.topics.cluster import Clustering, cluster, describe
from service.topics.labels import PhraseEncoder, TermCounts, count_terms
from service.topics.maps import layout_map
from service.topics.model import TopicModel, merged_rows
from service.topics.placement import Centroids, MapFn, PlacementBasis, assign_all, local_map
from service.topics.reduce import neighbour_graph

log = logging.getLogger(__name__)

Array = npt.NDArray[np.float32]
Stage = Callable[[str], AbstractContextManager[None]]
ASSIGN_BATCH = 4096
COUNT_ELSEWHERE_FROM = 10_000
"""From this many papers the label terms are counted in a child process while the sample is
fitted (34 s of one core at 74,728 papers, beside a UMAP that keeps the other one)."""


@dataclass(frozen=True)
class SampledFit:
    model: TopicModel
    """Topics over every paper (with the sample's clusterer and every paper's ``reduced``)."""
    coords: Array
    """Every paper's map position."""
    sample: npt.NDArray[np.int64]
    """Rows the fit saw."""


def draw_sample(n: int, size: int, seed: int) -> npt.NDArray[np.int64]:
    """``size`` distinct rows of ``n``, sorted, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(size, n), replace=False)).astype(np.int64)


def sample_rows(n: int, above: int, size: int, seed: int) -> npt.NDArray[np.int64] | None:
    """The rows to fit on, or None when every paper is fitted (``n`` up to ``above``, ``above``
    0, or a sample no smaller than the corpus)."""
    if above <= 0 or n <= above or size >= n:
        return None
    return draw_sample(n, size, seed)


def sample_params(params: TopicParams, share: float) -> TopicParams:
    """The corpus's clustering parameters for a sample holding ``share`` of its papers."""
    size = max(2, round(params.min_cluster_size * share))
    samples = max(1, min(size, round(params.min_samples * share)))
    return params.model_copy(update={"min_cluster_size": size, "min_samples": samples})


def fit_on_sample(
    vectors: Array,
    texts: list[str],
    params: TopicParams,
    label_terms: int,
    sample: npt.NDArray[np.int64],
    *,
    init_reduced: Array | None = None,
    init_coords: Array | None = None,
    stage: Stage = lambda _: nullcontext(),
    map_fn: MapFn | None = None,
    progress: bool = True,
    encode: PhraseEncoder | None = None,
) -> SampledFit:
    """Fit topics and map on ``sample``, assign the other rows, label topics over all rows.

    ``init_reduced`` / ``init_coords``: warm starts for every row (the sample's are used).
    ``stage(name)`` times the steps: ``topics``, ``map``, ``assign``, ``labels``."""
    n = len(vectors)
    counted: Callable[[], TermCounts | None] | None = (
        start_elsewhere(count_terms, texts, params.seed) if n >= COUNT_ELSEWHERE_FROM else None
    )
    rest = np.setdiff1d(np.arange(n, dtype=np.int64), sample)
    fit_params = sample_params(params, len(sample) / n)
    log.info(
        "topics: fitting on a sample of %d of %d papers (min_cluster_size %d, min_samples %d)",
        len(sample),
        n,
        fit_params.min_cluster_size,
        fit_params.min_samples,
    )
    sample_vectors = np.ascontiguousarray(vectors[sample])
    with stage("topics"):
        graph = neighbour_graph(sample_vectors, params.umap_neighbors)  # the map's too
        fitted = cluster(
            sample_vectors,
            fit_params,
            None if init_reduced is None else init_reduced[sample],
            graph,
        )
    with stage("map"):
        sample_coords = layout_map(
            sample_vectors,
            params.umap_neighbors,
            params.seed,
            None if init_coords is None else init_coords[sample],
            graph,
        )
    with stage("assign"):
        basis = PlacementBasis(
            index=flat_index(sample_vectors),
            neighbours=params.umap_neighbors,
            coords=sample_coords,
            assignments=fitted.labels,
            reduced=fitted.reduced,
            clusterer=fitted.clusterer,
            topic_of_label={int(label): int(label) for label in np.unique(fitted.labels)},
            outliers=fitted.outliers,
            assign=params.assign_outliers,
            far_below=params.far_similarity,
            centroids=Centroids.of(sample_vectors, fitted.labels, fitted.outliers),
        )
        placed = assign_all(
            basis, vectors[rest], ASSIGN_BATCH, map_fn or partial(local_map, progress=progress)
        )
        labels = merged_rows(n, [(sample, fitted.labels), (rest, placed.topics)], np.int32)
        # assigned papers: probability 1, as in incremental builds
        probabilities = merged_rows(n, [(sample, fitted.probabilities), (rest, 1.0)], np.float32)
        sample_outliers = (
            fitted.outliers if fitted.outliers is not None else np.zeros(len(sample), np.bool_)
        )
        outliers = merged_rows(n, [(sample, sample_outliers), (rest, placed.outliers)], np.bool_)
        sample_confidence = (
            fitted.confidence if fitted.confidence is not None else np.ones(len(sample))
        )
        confidence = merged_rows(
            n, [(sample, sample_confidence), (rest, placed.confidence)], np.float32
        )
        coords = merged_rows(n, [(sample, sample_coords), (rest, placed.coords)], np.float32)
        reduced = None
        if fitted.reduced is not None and placed.reduced is not None:
            reduced = merged_rows(n, [(sample, fitted.reduced), (rest, placed.reduced)], np.float32)
    with stage("labels"):
        everyone = Clustering(
            labels, probabilities, fitted.clusterer, reduced, outliers, confidence
        )
        model = describe(
            everyone, vectors, texts, params, label_terms, encode=encode, counted=counted
        )
    return SampledFit(model, coords, sample)
