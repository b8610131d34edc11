"""Topics: HDBSCAN over a UMAP reduction of the embeddings, named by c-TF-IDF keywords.

- Clustering runs in a low-dimensional UMAP space (``umap_components``), where density is
  meaningful; the map uses its own 2-D fit (see :mod:`service.topics.maps`).
- HDBSCAN is fitted with ``prediction_data=True`` so new papers can later be assigned to an
  existing topic (``hdbscan.approximate_predict``) without refitting.
- Labels: class-based TF-IDF (BERTopic's c-TF-IDF): a term's frequency within a topic times
  ``log(1 + A / f_t)``, with A the mean number of words per topic and f_t the term's frequency
  over all topics (the unclustered papers count as one more class so generic words sink).
- Every paper gets a topic: HDBSCAN's noise is assigned by the weighted vote of its nearest
  neighbours (:func:`service.topics.placement.assign_outliers`), keeping ``outlier`` and a
  ``confidence``; only papers none of whose neighbours is in a topic stay unclustered.
  ``assign_outliers=False`` keeps HDBSCAN's raw output.
- Ids are ordered by size: topic 0 is the largest; -1 holds the unclustered papers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from service.schemas import NOISE_TOPIC, TopicParams
from service.topics.groups import balanced_groups
from service.topics.labels import (
    GROUP_COVERAGE,
    PhraseEncoder,
    TermCounts,
    count_terms,
    label_of,
    topic_labels,
)
from service.topics.model import NOISE_LABEL, Topic, TopicGroup, TopicModel
from service.topics.placement import assign_outliers
from service.topics.reduce import Graph, umap_reduce

log = logging.getLogger(__name__)

UMAP_MIN_DIST = 0.0


def default_sizes(n: int) -> tuple[int, int, int]:
    """UMAP n_neighbors, min_cluster_size, min_samples for n papers when settings leave them open.

    Chosen on the bundled 115-paper corpus (a sweep over leaf/eom, sizes 4-6, neighbours 8-15:
    leaf selection with these values gives 12 readable topics and 14% noise, where eom lumps 40
    papers into one topic). n_neighbors ~ sqrt(n) within [5, 15] keeps small corpora local;
    min_cluster_size ~ sqrt(n)/2 (5 for 115 papers, 137 for 75k) keeps small corpora from
    collapsing into two topics and large ones from splintering into hundreds; min_samples at half
    of it keeps HDBSCAN from calling most of a small corpus noise.
    """
    neighbours = int(min(15, max(5, round(np.sqrt(n)))))
    size = int(min(200, max(3, round(np.sqrt(n) / 2))))
    return neighbours, size, max(2, size // 2)


def ordered_members(rows: npt.NDArray[np.intp], vectors: npt.NDArray[np.float32]) -> list[int]:
    """A topic's rows, closest to its centre first (how :class:`Topic` lists members)."""
    centre = vectors[rows].mean(axis=0)
    closeness = vectors[rows] @ centre
    return [int(rows[i]) for i in np.argsort(-closeness, kind="stable")]


def resolve_params(
    n: int,
    *,
    umap_components: int,
    umap_neighbors: int | None,
    min_cluster_size: int | None,
    min_samples: int | None,
    cluster_selection: str,
    seed: int,
    assign_outliers: bool = True,
    far_similarity: float = 0.0,
) -> TopicParams:
    """The parameters a corpus of n papers is clustered with (open ones chosen from n)."""
    auto_neighbours, auto_size, auto_samples = default_sizes(n)
    size = min_cluster_size or auto_size
    return TopicParams(
        umap_components=umap_components,
        umap_neighbors=umap_neighbors or auto_neighbours,
        min_cluster_size=size,
        min_samples=min_samples or min(auto_samples, size),
        cluster_selection=cluster_selection,
        seed=seed,
        assign_outliers=assign_outliers,
        far_similarity=far_similarity,
    )


@dataclass
class Clustering:
    """HDBSCAN's own labels over a UMAP reduction, before topics are numbered and labelled
    (its noise assigned to topics unless ``assign_outliers`` is off)."""

    labels: npt.NDArray[np.int32]
    probabilities: npt.NDArray[np.float32]
    clusterer: Any = None
    reduced: npt.NDArray[np.float32] | None = None
    outliers: npt.NDArray[np.bool_] | None = None
    """Papers HDBSCAN called noise (None: none was)."""
    confidence: npt.NDArray[np.float32] | None = None
    """Each paper's confidence in its topic, 0-1 (None: all 1)."""


def cluster(
    vectors: npt.NDArray[np.float32],
    params: TopicParams,
    init: npt.NDArray[np.float32] | None = None,
    graph: Graph | None = None,
) -> Clustering:
    """UMAP to ``params.umap_components`` dimensions, then HDBSCAN there.

    ``init``: a warm start for UMAP (the previous build's positions); ``graph``: the vectors'
    neighbour graph when the caller shares one with the map."""
    n = len(vectors)
    size, samples = params.min_cluster_size, params.min_samples
    if n < 2 * size:
        log.info(
            "topics: %d papers is too few to cluster (min_cluster_size %d): one topic", n, size
        )
        return Clustering(np.zeros(n, dtype=np.int32), np.ones(n, dtype=np.float32))
    import hdbscan

    reduced = umap_reduce(
        vectors,
        params.umap_components,
        params.umap_neighbors,
        UMAP_MIN_DIST,
        params.seed,
        init,
        graph,
    )
    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=size,
        min_samples=samples,
        cluster_selection_method=params.cluster_selection,
        prediction_data=True,
    ).fit(reduced)
    raw = clusterer.labels_.astype(np.int32)
    voted = assign_outliers(
        vectors, raw, params.umap_neighbors, params.assign_outliers, params.far_similarity
    )
    return Clustering(
        voted.topics,
        clusterer.probabilities_.astype(np.float32),
        clusterer,
        reduced,
        voted.outliers,
        voted.confidence,
    )


def fit_topics(
    vectors: npt.NDArray[np.float32],
    texts: list[str],
    params: TopicParams,
    label_terms: int,
    init: npt.NDArray[np.float32] | None = None,
    encode: PhraseEncoder | None = None,
    graph: Graph | None = None,
) -> TopicModel:
    """``init``: a warm start for the clustering UMAP (the previous build's positions);
    ``encode``: the build's embedder, to name topics by phrases near their centroids;
    ``graph``: the vectors' neighbour graph, when the caller shares one with the map."""
    clustering = cluster(vectors, params, init, graph)
    return describe(clustering, vectors, texts, params, label_terms, encode=encode)


def describe(
    clustering: Clustering,
    vectors: npt.NDArray[np.float32],
    texts: list[str],
    params: TopicParams,
    label_terms: int,
    encode: PhraseEncoder | None = None,
    counted: Callable[[], TermCounts | None] | None = None,
) -> TopicModel:
    """Topics from HDBSCAN's labels of every paper: ids by size, names and keywords, groups.

    ``counted``: the call that returns ``count_terms(texts, params.seed)`` when the caller
    started it elsewhere (:mod:`service.runtime`); else the terms are counted here."""
    raw = clustering.labels
    n = len(raw)
    # Renumber by size, largest first, so ids read naturally; remember the mapping for prediction.
    clustered = [int(c) for c in set(raw.tolist()) if c != NOISE_TOPIC]
    sizes = {c: int(k) for c, k in zip(*np.unique(raw, return_counts=True), strict=True)}
    by_size = sorted(clustered, key=lambda c: (-sizes[c], c))
    renumber = {old: new for new, old in enumerate(by_size)}
    renumber[NOISE_TOPIC] = NOISE_TOPIC
    assignments = np.array([renumber[int(c)] for c in raw], dtype=np.int32)

    topic_ids = list(range(len(by_size)))
    terms = counted() if counted is not None else count_terms(texts, params.seed)
    topics = [
        Topic(t, "", [], ordered_members(np.flatnonzero(assignments == t), vectors))
        for t in topic_ids
    ]
    noise_rows = np.flatnonzero(assignments == NOISE_TOPIC)
    if len(noise_rows):
        topics.append(Topic(NOISE_TOPIC, NOISE_LABEL, [], ordered_members(noise_rows, vectors)))
    outliers = (
        clustering.outliers if clustering.outliers is not None else np.zeros(n, dtype=np.bool_)
    )
    confidence = (
        clustering.confidence if clustering.confidence is not None else np.ones(n, dtype=np.float32)
    )
    log.info(
        "topics: %d topics, %d of %d papers outliers, %d unclustered",
        len(topic_ids),
        int(outliers.sum()),
        n,
        len(noise_rows),
    )
    groups = group_topics(vectors, terms, assignments, topics, label_terms, encode)
    name_topics(topics, groups, vectors, terms, assignments, label_terms, encode)
    return TopicModel(
        assignments,
        clustering.probabilities,
        topics,
        params,
        clustering.clusterer,
        renumber,
        groups,
        clustering.reduced,
        outliers,
        confidence,
    )


def name_topics(
    topics: list[Topic],
    groups: list[TopicGroup],
    vectors: npt.NDArray[np.float32],
    terms: TermCounts | None,
    assignments: npt.NDArray[np.int32],
    label_terms: int,
    encode: PhraseEncoder | None = None,
) -> None:
    """Name and label the fine topics once their groups (already named) exist: each topic
    against its siblings in its group, and never like a group (:func:`topic_labels`)."""
    siblings = {c: g.children for g in groups for c in g.children} if groups else None
    ids = [t.id for t in topics if t.id != NOISE_TOPIC]
    names = topic_labels(
        terms,
        assignments,
        ids,
        vectors,
        encode,
        siblings=siblings,
        parents=[g.name for g in groups],
    )
    for topic in topics:
        if topic.id in names:
            topic.keywords = names[topic.id].keywords
            topic.label = label_of(topic.keywords[:label_terms], f"topic {topic.id}")
            topic.name = names[topic.id].name


def group_topics(
    vectors: npt.NDArray[np.float32],
    terms: TermCounts | None,
    assignments: npt.NDArray[np.int32],
    topics: list[Topic],
    label_terms: int,
    encode: PhraseEncoder | None = None,
) -> list[TopicGroup]:
    """Merge topics into balanced coarse groups (:func:`service.topics.groups.balanced_groups`).

    Each group gets its own name and keywords, computed over its papers against the other groups.
    """
    fine = [t for t in topics if t.id != NOISE_TOPIC]
    if len(fine) < 4:
        return []
    centroids = np.stack([vectors[t.members].mean(axis=0) for t in fine])
    sizes = np.array([t.size for t in fine], dtype=np.int64)
    group_of_topic = dict(zip((t.id for t in fine), balanced_groups(centroids, sizes), strict=True))
    n_groups = max(group_of_topic.values()) + 1
    groups = [
        TopicGroup(
            id=g,
            label="",
            keywords=[],
            children=sorted(t.id for t in fine if group_of_topic[t.id] == g),
        )
        for g in range(n_groups)
    ]
    name_groups(groups, vectors, terms, assignments, label_terms, encode)
    return groups


def name_groups(
    groups: list[TopicGroup],
    vectors: npt.NDArray[np.float32],
    terms: TermCounts | None,
    assignments: npt.NDArray[np.int32],
    label_terms: int,
    encode: PhraseEncoder | None = None,
) -> None:
    """Name and label the coarse groups, each over its topics' papers against the others, by
    phrases that speak for many of its papers (:data:`service.topics.labels.GROUP_COVERAGE`)."""
    group_of_topic = {child: g.id for g in groups for child in g.children}
    group_assignments = np.array(
        [group_of_topic[int(a)] if a != NOISE_TOPIC else NOISE_TOPIC for a in assignments],
        dtype=np.int32,
    )
    ids = [g.id for g in groups]
    names = topic_labels(terms, group_assignments, ids, vectors, encode, coverage=GROUP_COVERAGE)
    for group in groups:
        group.keywords = names[group.id].keywords
        group.label = label_of(group.keywords[:label_terms], f"group {group.id}")
        group.name = names[group.id].name
