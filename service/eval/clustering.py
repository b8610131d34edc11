"""Topic quality against known labels: our topics and BERTopic's, fitted on the same vectors.

``paperscope eval clustering FILE --label-field primary_category`` reads a JSONL (or .jsonl.gz)
of papers with a label, embeds them as a build does (cached), fits topics with the build's own
code and parameters, and scores them against the labels with scikit-learn's NMI, ARI and
V-measure, three ways:

- ``all``: every paper, the unclustered ones counted as one more label;
- ``clustered``: only the papers HDBSCAN put in a topic (with the share that is);
- ``reassigned``: every paper, each unclustered one moved to the topic with the nearest centroid
  (what a reader browsing by topic sees when noise is reassigned).

Our topics are scored as served (HDBSCAN's outliers assigned to their most likely topic, see
:mod:`service.topics.placement`) and as HDBSCAN left them (``raw HDBSCAN``: the outliers
unclustered, from the same fit). With ``bertopic`` installed (the ``dev`` extra), BERTopic with
its defaults is fitted on the same vectors in the same run, then its outliers reduced as its
documentation shows (``reduce_outliers(strategy="embeddings")`` and ``update_topics``): two
rows, each with its fit time (the second's includes the first's fit).

Label quality (:mod:`service.eval.labels`): NPMI coherence of each topic's top-10 keywords over
the corpus (document co-occurrence) and topic diversity (share of distinct keywords), for our
keywords (phrases) and BERTopic's (its default words). Name quality (ours; BERTopic names no
topic): duplicate and near-duplicate topic names, topics named like their group, one-word names
(:func:`name_counts`).

Stability (``noise_stability``): every method fitted again on the same vectors with bf16-level
noise, and the ARI between its two topic sets (:mod:`service.eval.stability`).
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score

from service.config import Settings
from service.embed.backends import Embedder
from service.embed.passages import Windowing, embed_papers
from service.errors import InvalidInput
from service.eval.labels import npmi_coherence, topic_diversity
from service.eval.peers import peer_rows
from service.eval.stability import agreement, bf16_noise
from service.pipeline.pipeline import StageClock, topic_params
from service.schemas import NOISE_TOPIC, embedding_text
from service.store import Store, content_hash
from service.topics.cluster import fit_topics
from service.topics.labels import clean_for_labels
from service.topics.model import TopicModel
from service.topics.naming import duplicate_counts, named_like_parent
from service.topics.sampling import fit_on_sample, sample_rows

log = logging.getLogger(__name__)


@dataclass
class Scores:
    nmi: float
    ari: float
    v_measure: float


@dataclass
class MethodReport:
    method: str
    topics: int
    noise_share: float
    fit_seconds: float
    all: Scores
    clustered: Scores
    reassigned: Scores
    npmi: float | None = None
    """NPMI coherence of the topics' top-10 keywords over the corpus (None: not scored)."""
    diversity: float | None = None
    """Share of distinct keywords among the topics' top-10."""
    outlier_share: float | None = None
    """Papers the clustering itself called noise (whether or not they were assigned after)."""
    names: NameCounts | None = None
    """How distinct the topics' names are (None: the method gives no names)."""
    noise_ari: float | None = None
    """ARI between its topics and its topics refitted on the vectors with bf16-level noise
    (:mod:`service.eval.stability`; None: not measured)."""


@dataclass
class NameCounts:
    """Topic names a reader cannot tell apart (:mod:`service.topics.naming`; goal 0 for the
    first three), and names of a single word."""

    duplicates: int
    near_duplicates: int
    like_group: int
    single_word: int


def name_counts(topics: list[str], groups: list[tuple[str, list[str]]]) -> NameCounts:
    """Counts over the topics' names and the (group name, its topics' names) pairs."""
    exact, near, single = duplicate_counts(topics)
    pairs = [(child, group) for group, children in groups for child in children]
    return NameCounts(exact, near, named_like_parent(pairs), single)


def _names_cell(counts: NameCounts | None) -> str:
    if counts is None:
        return "- | - | - | -"
    return (
        f"{counts.duplicates} | {counts.near_duplicates} | {counts.like_group} "
        f"| {counts.single_word}"
    )


@dataclass
class ClusterReport:
    file: str
    label_field: str
    papers: int
    labels: int
    model: str
    methods: list[MethodReport] = field(default_factory=list)
    embed_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    """Peers skipped (not installed) and the like."""

    def table(self) -> str:
        lines = [
            "| method | topics | unclustered | outliers | fit s | NMI all | ARI all | V all "
            "| NMI clustered | NMI reassigned | ARI reassigned | NPMI | diversity "
            "| duplicate names | near-duplicate names | named like group | one-word names "
            "| ARI under bf16 noise |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in self.methods:
            outliers = "" if m.outlier_share is None else f"{m.outlier_share:.1%}"
            lines.append(
                f"| {m.method} | {m.topics} | {m.noise_share:.1%} | {outliers} "
                f"| {m.fit_seconds:.0f} "
                f"| {m.all.nmi:.3f} | {m.all.ari:.3f} | {m.all.v_measure:.3f} "
                f"| {m.clustered.nmi:.3f} | {m.reassigned.nmi:.3f} | {m.reassigned.ari:.3f} "
                f"| {_optional(m.npmi)} | {_optional(m.diversity)} | {_names_cell(m.names)} "
                f"| {_optional(m.noise_ari)} |"
            )
        return "\n".join(lines)


def _optional(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def label_quality(
    report: MethodReport,
    keywords: list[list[str]],
    corpus: list[str],
    names: list[str] | None = None,
) -> MethodReport:
    """``report`` with the NPMI coherence and diversity of these topics' keywords and, unless
    counted already (ours, with groups), how distinct its names are (``names``, else each
    topic's first three keywords, as peers label)."""
    report.npmi = npmi_coherence(keywords, corpus)
    report.diversity = topic_diversity(keywords)
    if report.names is None:
        shown = names if names is not None else [" ".join(words[:3]) for words in keywords]
        report.names = name_counts(shown, [])
    return report


def read_labelled(
    path: Path, label_field: str, limit: int | None
) -> tuple[list[tuple[str, str]], list[str]]:
    """(title, abstract) pairs and their labels; records without all three are skipped."""
    if not path.is_file():
        raise InvalidInput(f"file not found: {path}")
    opener: Any = gzip.open if path.suffix == ".gz" else open
    papers: list[tuple[str, str]] = []
    labels: list[str] = []
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and len(papers) >= limit:
                break
            if not line.strip():
                continue
            record = json.loads(line)
            title, abstract = record.get("title"), record.get("abstract")
            label = record.get(label_field)
            if title and abstract and label not in (None, ""):
                papers.append((str(title), str(abstract)))
                labels.append(str(label))
    if not papers:
        raise InvalidInput(f"no record in {path} has title, abstract and {label_field!r}")
    return papers, labels


def _scores(labels: list[str], topics: npt.NDArray[np.int64]) -> Scores:
    return Scores(
        round(float(normalized_mutual_info_score(labels, topics)), 4),
        round(float(adjusted_rand_score(labels, topics)), 4),
        round(float(v_measure_score(labels, topics)), 4),
    )


def reassign_noise(
    vectors: npt.NDArray[np.float32], topics: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Each unclustered paper moved to the topic whose centroid is nearest (cosine)."""
    ids = sorted(set(topics.tolist()) - {NOISE_TOPIC})
    noise = topics == NOISE_TOPIC
    if not ids or not noise.any():
        return topics
    centroids = np.stack([vectors[topics == t].mean(axis=0) for t in ids])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    out = topics.copy()
    out[noise] = np.asarray(ids)[np.argmax(vectors[noise] @ centroids.T, axis=1)]
    return out


def score_method(
    method: str,
    labels: list[str],
    vectors: npt.NDArray[np.float32],
    topics: npt.NDArray[np.int64],
    seconds: float,
    outliers: npt.NDArray[np.bool_] | None = None,
) -> MethodReport:
    clustered = topics != NOISE_TOPIC
    kept = [label for label, keep in zip(labels, clustered, strict=True) if keep]
    outlier_share = float((~clustered).mean() if outliers is None else outliers.mean())
    return MethodReport(
        method=method,
        topics=len(set(topics.tolist()) - {NOISE_TOPIC}),
        noise_share=round(float(1 - clustered.mean()), 4),
        fit_seconds=round(seconds, 1),
        all=_scores(labels, topics),
        clustered=_scores(kept, topics[clustered]) if kept else Scores(0, 0, 0),
        reassigned=_scores(labels, reassign_noise(vectors, topics)),
        outlier_share=round(outlier_share, 4),
    )


def evaluate_clustering(
    path: Path,
    label_field: str,
    embedder: Embedder,
    cache: Path,
    windowing: Windowing,
    settings: Settings,
    limit: int | None = None,
    with_bertopic: bool = True,
    with_peers: bool = True,
    noise_stability: bool = False,
) -> ClusterReport:
    """``noise_stability``: fit every method again on the vectors with bf16-level noise and
    report how far its topics moved (:mod:`service.eval.stability`)."""
    papers, labels = read_labelled(path, label_field, limit)
    start = time.perf_counter()
    cache.parent.mkdir(parents=True, exist_ok=True)
    with Store(cache) as store:
        hashes = [content_hash(title, abstract) for title, abstract in papers]
        vectors, _ = embed_papers(store, embedder, papers, hashes, windowing, progress=True)
    report = ClusterReport(
        file=str(path),
        label_field=label_field,
        papers=len(papers),
        labels=len(set(labels)),
        model=f"{embedder.name} ({embedder.backend})",
        embed_seconds=round(time.perf_counter() - start, 1),
    )
    texts = [clean_for_labels(embedding_text(title, abstract)) for title, abstract in papers]
    fitted = fit_methods(vectors, labels, texts, settings, embedder, with_peers, with_bertopic)
    report.methods.extend(row for row, _ in fitted.rows)
    report.notes.extend(fitted.notes)
    if noise_stability:
        log.info("eval: every method again, on the vectors with bf16-level noise")
        noisy = bf16_noise(vectors, settings.seed)
        again = fit_methods(
            noisy, labels, texts, settings, embedder, with_peers, with_bertopic, fitted.counts
        )
        refitted = {_kind(row.method): topics for row, topics in again.rows}
        for row, topics in fitted.rows:
            if _kind(row.method) in refitted:
                row.noise_ari = agreement(topics, refitted[_kind(row.method)])
    return report


@dataclass
class FittedRows:
    """Each method's scored row with its topics, and notes on the methods skipped."""

    rows: list[tuple[MethodReport, npt.NDArray[np.int64]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    """The topic counts k-means was given (ours, our coarse level)."""


def _kind(method: str) -> str:
    """A row's method without the figures that may differ between two fits (our parameters
    and sample size in parentheses)."""
    return method.split(" (")[0].split(", k = ")[0] + (" (coarse)" if "coarse" in method else "")


def fit_methods(
    vectors: npt.NDArray[np.float32],
    labels: list[str],
    texts: list[str],
    settings: Settings,
    embedder: Embedder,
    with_peers: bool,
    with_bertopic: bool,
    counts: dict[str, int] | None = None,
) -> FittedRows:
    """Ours, the peers' and BERTopic's topics of these vectors, each scored against labels;
    ``counts``: k-means' topic counts (default: our fine and coarse counts of this fit)."""
    out = FittedRows()
    model, name, seconds = fit_ours(vectors, texts, settings, embedder)
    out.rows.extend(our_rows(model, name, seconds, labels, vectors, texts))
    if with_peers:
        fine = len([t for t in model.topics if t.id != NOISE_TOPIC])
        out.counts = counts or {"ours": fine, "our coarse level": len(model.groups)}
        peers = peer_rows(vectors, texts, settings.seed, out.counts, out.notes, embedder.encode)
        for peer in peers:
            row = score_method(peer.method, labels, vectors, peer.topics, peer.seconds, peer.noise)
            out.rows.append((label_quality(row, peer.words, texts), peer.topics))
    if with_bertopic:
        fits = _bertopic(texts, vectors)
        if fits is None:
            out.notes.append("BERTopic skipped: pip install bertopic (the dev extra has it)")
        for method, topics, seconds, noise, words in fits or []:
            row = score_method(method, labels, vectors, topics, seconds, noise)
            out.rows.append((label_quality(row, words, texts), topics))
    return out


def fit_ours(
    vectors: npt.NDArray[np.float32], texts: list[str], settings: Settings, embedder: Embedder
) -> tuple[TopicModel, str, float]:
    """Our topics as a build fits them: (model, row name, fit seconds without the 2-D map)."""
    start = time.perf_counter()
    params = topic_params(settings, len(vectors))
    name = f"paperscope ({params.cluster_selection}, min_cluster_size {params.min_cluster_size})"
    sample = sample_rows(
        len(vectors), settings.topic_sample_above, settings.topic_sample_size, settings.seed
    )
    if sample is None:
        model = fit_topics(vectors, texts, params, settings.label_terms, encode=embedder.encode)
        return model, name, time.perf_counter() - start
    # as a build does it; the 2-D map it fits on the way is not part of the topic fit
    clock = StageClock({})
    fit = fit_on_sample(
        vectors,
        texts,
        params,
        settings.label_terms,
        sample,
        stage=clock.stage,
        progress=False,
        encode=embedder.encode,
    )
    seconds = time.perf_counter() - start - clock.seconds["map"]
    return fit.model, f"paperscope (fitted on {len(sample):,} papers, the rest assigned)", seconds


def our_rows(
    model: TopicModel,
    name: str,
    seconds: float,
    labels: list[str],
    vectors: npt.NDArray[np.float32],
    texts: list[str],
) -> list[tuple[MethodReport, npt.NDArray[np.int64]]]:
    """Our fine topics as served and as HDBSCAN left them, and our coarse groups, each with
    its topics."""
    served = model.assignments.astype(np.int64)
    outliers = model.outliers if model.outliers is not None else served == NOISE_TOPIC
    fine = [t for t in model.topics if t.id != NOISE_TOPIC]
    keywords = [t.keywords for t in fine]
    names = [t.name or t.label for t in fine]
    ours = score_method(name + " fine", labels, vectors, served, seconds, outliers)
    named = {t.id: t.name or t.label for t in fine}
    groups = [(g.name, [named[c] for c in g.children if c in named]) for g in model.groups]
    ours.names = name_counts(names, groups)
    rows = [(label_quality(ours, keywords, texts, names), served)]
    raw = np.where(outliers, NOISE_TOPIC, served)
    as_fitted = score_method(
        "paperscope raw HDBSCAN (same fit)", labels, vectors, raw, seconds, outliers
    )
    rows.append((label_quality(as_fitted, keywords, texts, names), raw))
    if model.groups:
        group_of = {child: g.id for g in model.groups for child in g.children}
        coarse = np.array([group_of.get(int(t), NOISE_TOPIC) for t in served], dtype=np.int64)
        row = score_method("paperscope coarse groups", labels, vectors, coarse, seconds, outliers)
        group_words = [g.keywords for g in model.groups]
        group_names = [g.name or g.label for g in model.groups]
        rows.append((label_quality(row, group_words, texts, group_names), coarse))
    return rows


BertopicRow = tuple[str, npt.NDArray[np.int64], float, npt.NDArray[np.bool_], list[list[str]]]
"""(method, topics, fit seconds, HDBSCAN's noise, each topic's top-10 words)."""


def _bertopic(texts: list[str], vectors: npt.NDArray[np.float32]) -> list[BertopicRow] | None:
    """BERTopic with its defaults on our vectors, then with its outliers reduced as its docs
    show (``reduce_outliers(strategy="embeddings")``, then ``update_topics``), or None when
    BERTopic is not installed."""
    try:
        from bertopic import BERTopic
    except ImportError:
        return None
    start = time.perf_counter()
    model = BERTopic(embedding_model=None)
    found, _ = model.fit_transform(texts, embeddings=vectors)
    fit_seconds = time.perf_counter() - start
    topics = np.asarray(found, dtype=np.int64)
    noise = topics == NOISE_TOPIC

    def words() -> list[list[str]]:
        ids = sorted(set(model.topics_) - {NOISE_TOPIC})
        return [[str(w) for w, _ in (model.get_topic(t) or [])][:10] for t in ids]

    rows: list[BertopicRow] = [("BERTopic defaults", topics, fit_seconds, noise, words())]
    if noise.any() and not noise.all():
        reduced = model.reduce_outliers(texts, found, strategy="embeddings", embeddings=vectors)
        model.update_topics(texts, topics=reduced)
        rows.append(
            (
                'BERTopic + reduce_outliers("embeddings")',
                np.asarray(reduced, dtype=np.int64),
                time.perf_counter() - start,
                noise,
                words(),
            )
        )
    return rows
