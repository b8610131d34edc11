"""Topics: HDBSCAN over a UMAP reduction of the embeddings, with c-TF-IDF keyword labels.

- Clustering runs in a low-dimensional UMAP space (``umap_components``), where density is
  meaningful; the map uses its own 2-D fit (see :mod:`service.maps`).
- HDBSCAN is fitted with ``prediction_data=True`` so new papers can later be assigned to an
  existing topic (``hdbscan.approximate_predict``) without refitting.
- Labels: class-based TF-IDF (BERTopic's c-TF-IDF): a term's frequency within a topic times
  ``log(1 + A / f_t)``, with A the mean number of words per topic and f_t the term's frequency
  over all topics (the unclustered papers count as one more class so generic words sink).
- Ids are ordered by size: topic 0 is the largest; -1 holds the unclustered papers.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from service.reduce import umap_reduce
from service.schemas import NOISE_TOPIC, TopicParams

log = logging.getLogger(__name__)

NOISE_LABEL = "unclustered"
REPRESENTATIVES = 3
UMAP_MIN_DIST = 0.0

#: Words every abstract uses; they say nothing about a topic.
ACADEMIC_STOP_WORDS = frozenset(
    """
    paper papers propose proposed proposes approach approaches method methods results result show
    shows shown demonstrate demonstrates novel new using use used based work works framework
    study studies present presents introduce introduces existing state art performance
    experiments experimental extensive effective effectively significantly significant improve
    improves improved improving achieve achieves achieving task tasks model models data code
    available github com https http www project page furthermore however moreover specifically
    particular various different approach way ways problem problems recent recently prior
    additionally address addresses leading leverage leverages key including include includes
    large small high low better best outperforms outperform compared comparable demonstrating
    able enable enables given provide provides allows effectiveness superior challenges challenge
    """.split()
)
STOP_WORDS = sorted(ENGLISH_STOP_WORDS | ACADEMIC_STOP_WORDS)
TOKEN_PATTERN = r"(?u)\b[a-zA-Z][a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*\b"


@dataclass
class Topic:
    id: int
    label: str
    keywords: list[str]
    members: list[int] = field(repr=False)
    """Row numbers, closest to the topic centre (in embedding space) first."""

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass
class TopicGroup:
    """A coarse topic: fine topics merged by the similarity of their centroids."""

    id: int
    label: str
    keywords: list[str]
    children: list[int]


@dataclass
class TopicModel:
    assignments: npt.NDArray[np.int32]
    probabilities: npt.NDArray[np.float32]
    topics: list[Topic]
    params: TopicParams
    clusterer: Any = field(default=None, repr=False)
    """The fitted ``hdbscan.HDBSCAN`` (with prediction data), or None for tiny corpora."""
    hdbscan_to_topic: dict[int, int] = field(default_factory=dict)
    """HDBSCAN's own label -> topic id (ids are renumbered by size)."""
    groups: list[TopicGroup] = field(default_factory=list)
    """The coarse level of the topic hierarchy (what the map shows when zoomed out)."""
    reduced: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    """The UMAP clustering space HDBSCAN ran in (None for tiny corpora): kept so papers added
    later can be placed in it and assigned with ``hdbscan.approximate_predict``."""


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


def _top_terms(
    scores: npt.NDArray[np.float64], vocabulary: npt.NDArray[Any], count: int
) -> list[str]:
    """Top terms, skipping repeats of chosen ones (``diffusion`` / ``diffusion models``)."""
    chosen: list[str] = []
    for term_index in np.argsort(-scores):
        if scores[term_index] <= 0 or len(chosen) >= count:
            break
        term = str(vocabulary[term_index])
        padded = f" {_singular(term)} "
        if any(f" {c} " in padded or padded in f" {c} " for c in map(_singular, chosen)):
            continue
        chosen.append(term)
    return chosen


def _singular(term: str) -> str:
    """Crude plural folding so a label never shows both ``llm`` and ``llms``."""
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in term.split())


@dataclass(frozen=True)
class TermCounts:
    """Terms counted per paper (sparse), once per build: topics and groups both read it."""

    per_paper: Any
    vocabulary: npt.NDArray[Any]


def count_terms(texts: list[str]) -> TermCounts | None:
    """Unigrams and bigrams per paper, stop words out; on large corpora only terms in at least 3
    papers, which keeps the bigram vocabulary bounded. None when every word is a stop word."""
    vectorizer = CountVectorizer(
        stop_words=STOP_WORDS,
        ngram_range=(1, 2),
        token_pattern=TOKEN_PATTERN,
        min_df=1 if len(texts) < 1000 else 3,
        lowercase=True,
        dtype=np.float32,
    )
    try:
        per_paper = vectorizer.fit_transform(texts)
    except ValueError:  # every word is a stop word
        return None
    return TermCounts(per_paper, vectorizer.get_feature_names_out())


def keyword_labels(
    terms: TermCounts | None,
    assignments: npt.NDArray[np.int32],
    topic_ids: list[int],
    count: int,
) -> dict[int, list[str]]:
    """c-TF-IDF keywords for each topic id in ``topic_ids``: the papers' term counts summed per
    class with one sparse product, weighted by how rare each term is across classes."""
    from scipy import sparse

    if terms is None:
        return {topic_id: [] for topic_id in topic_ids}
    per_paper, vocabulary = terms.per_paper, terms.vocabulary
    n = per_paper.shape[0]
    classes = sorted(set(assignments.tolist()))
    class_of = {c: i for i, c in enumerate(classes)}
    membership = sparse.csr_matrix(
        (
            np.ones(n, dtype=np.float32),
            ([class_of[int(c)] for c in assignments], np.arange(n)),
        ),
        shape=(len(classes), n),
    )
    frequency = sparse.csr_matrix(membership @ per_paper)
    term_totals = np.asarray(frequency.sum(axis=0)).ravel()
    mean_words = float(frequency.sum()) / len(classes)
    idf = np.log1p(mean_words / np.maximum(term_totals, 1.0))
    row_totals = np.maximum(np.asarray(frequency.sum(axis=1)).ravel(), 1.0)
    keywords = {}
    for topic_id in topic_ids:
        row = class_of[topic_id]
        scores = frequency.getrow(row).toarray().ravel() / row_totals[row] * idf
        keywords[topic_id] = _top_terms(scores, vocabulary, count)
    return keywords


def _label(keywords: list[str], fallback: str) -> str:
    return ", ".join(keywords[:4]) if keywords else fallback


def _ordered_members(rows: npt.NDArray[np.intp], vectors: npt.NDArray[np.float32]) -> list[int]:
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
    )


@dataclass
class Clustering:
    """HDBSCAN's own labels over a UMAP reduction, before topics are numbered and labelled."""

    labels: npt.NDArray[np.int32]
    probabilities: npt.NDArray[np.float32]
    clusterer: Any = None
    reduced: npt.NDArray[np.float32] | None = None


def cluster(
    vectors: npt.NDArray[np.float32],
    params: TopicParams,
    init: npt.NDArray[np.float32] | None = None,
) -> Clustering:
    """UMAP to ``params.umap_components`` dimensions, then HDBSCAN there.

    ``init``: a warm start for UMAP (the previous build's positions)."""
    n = len(vectors)
    size, samples = params.min_cluster_size, params.min_samples
    if n < 2 * size:
        log.info(
            "topics: %d papers is too few to cluster (min_cluster_size %d): one topic", n, size
        )
        return Clustering(np.zeros(n, dtype=np.int32), np.ones(n, dtype=np.float32))
    import hdbscan

    reduced = umap_reduce(
        vectors, params.umap_components, params.umap_neighbors, UMAP_MIN_DIST, params.seed, init
    )
    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=size,
        min_samples=samples,
        cluster_selection_method=params.cluster_selection,
        prediction_data=True,
    ).fit(reduced)
    return Clustering(
        clusterer.labels_.astype(np.int32),
        clusterer.probabilities_.astype(np.float32),
        clusterer,
        reduced,
    )


def fit_topics(
    vectors: npt.NDArray[np.float32],
    texts: list[str],
    params: TopicParams,
    label_terms: int,
    init: npt.NDArray[np.float32] | None = None,
) -> TopicModel:
    """``init``: a warm start for the clustering UMAP (the previous build's positions)."""
    return describe(cluster(vectors, params, init), vectors, texts, params, label_terms)


def describe(
    clustering: Clustering,
    vectors: npt.NDArray[np.float32],
    texts: list[str],
    params: TopicParams,
    label_terms: int,
) -> TopicModel:
    """Topics from HDBSCAN's labels of every paper: ids by size, keyword labels, groups."""
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
    terms = count_terms(texts)
    keywords = keyword_labels(terms, assignments, topic_ids, label_terms)
    topics = [
        Topic(
            id=t,
            label=_label(keywords[t], f"topic {t}"),
            keywords=keywords[t],
            members=_ordered_members(np.flatnonzero(assignments == t), vectors),
        )
        for t in topic_ids
    ]
    noise_rows = np.flatnonzero(assignments == NOISE_TOPIC)
    if len(noise_rows):
        topics.append(Topic(NOISE_TOPIC, NOISE_LABEL, [], _ordered_members(noise_rows, vectors)))
    log.info("topics: %d topics, %d of %d papers unclustered", len(topic_ids), len(noise_rows), n)
    groups = group_topics(vectors, terms, assignments, topics, label_terms)
    return TopicModel(
        assignments,
        clustering.probabilities,
        topics,
        params,
        clustering.clusterer,
        renumber,
        groups,
        clustering.reduced,
    )


def group_topics(
    vectors: npt.NDArray[np.float32],
    terms: TermCounts | None,
    assignments: npt.NDArray[np.int32],
    topics: list[Topic],
    label_terms: int,
) -> list[TopicGroup]:
    """Merge topics into about sqrt(k) coarse groups (average-linkage on centroid cosine).

    Each group gets its own c-TF-IDF label, computed over its papers against the other groups.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    fine = [t for t in topics if t.id != NOISE_TOPIC]
    if len(fine) < 4:
        return []
    centroids = np.stack([vectors[t.members].mean(axis=0) for t in fine])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    tree = linkage(centroids, method="average", metric="cosine")
    n_groups = max(2, round(np.sqrt(len(fine))))
    cut = fcluster(tree, t=n_groups, criterion="maxclust")
    group_of_topic = {t.id: int(g) for t, g in zip(fine, cut, strict=True)}
    # number groups by size, largest first, like topics
    sizes: dict[int, int] = {}
    for topic in fine:
        sizes[group_of_topic[topic.id]] = sizes.get(group_of_topic[topic.id], 0) + topic.size
    order = {g: i for i, g in enumerate(sorted(sizes, key=lambda g: (-sizes[g], g)))}
    group_assignments = np.array(
        [order[group_of_topic[int(a)]] if a != NOISE_TOPIC else NOISE_TOPIC for a in assignments],
        dtype=np.int32,
    )
    keywords = keyword_labels(terms, group_assignments, list(range(len(order))), label_terms)
    return [
        TopicGroup(
            id=g,
            label=_label(keywords[g], f"group {g}"),
            keywords=keywords[g],
            children=sorted(t.id for t in fine if order[group_of_topic[t.id]] == g),
        )
        for g in range(len(order))
    ]


def clean_for_labels(text: str) -> str:
    """Drop URLs and LaTeX commands, which otherwise become 'keywords'."""
    text = re.sub(r"https?://\S+", " ", text)
    return re.sub(r"\\[a-zA-Z]+|\$[^$]*\$", " ", text)
