"""Peer clusterings for ``paperscope eval clustering``, fitted on the same vectors in the same run.

Each peer is optional (the ``dev`` extra installs them); one that is not installed is skipped
with a note in the report:

- EVoC (``evoc``) with its defaults; its noise is moved to the majority topic of each paper's
  10 nearest clustered papers (what a reader sees when every paper has a topic);
- Turftopic's Topeax with its defaults, given our vectors (so it never loads an encoder);
- k-means (scikit-learn, seeded) at a given topic count: ours, and our coarse level's.

Peers without their own topic words (EVoC, k-means) are described by the same class-based
TF-IDF words, so NPMI and diversity compare clusterings, not wording.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.schemas import NOISE_TOPIC

log = logging.getLogger(__name__)

Array = npt.NDArray[np.float32]
Topics = npt.NDArray[np.int64]
Encode = Callable[[list[str]], Array]
VOTERS = 10
"""Nearest clustered papers whose majority topic an EVoC noise paper takes."""


@dataclass
class PeerRow:
    method: str
    topics: Topics
    seconds: float
    noise: npt.NDArray[np.bool_]
    """Papers the peer itself left unclustered (before any reassignment)."""
    words: list[list[str]]
    """Each topic's top-10 words."""


def topic_words(texts: list[str], topics: Topics, top: int = 10) -> list[list[str]]:
    """Each topic's ``top`` words by class-based TF-IDF (BERTopic's weighting)."""
    from sklearn.feature_extraction.text import CountVectorizer

    ids = sorted(set(topics.tolist()) - {NOISE_TOPIC})
    if not ids:
        return []
    vectorizer = CountVectorizer(stop_words="english", min_df=2)
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # no word occurs twice
        return [[] for _ in ids]
    rows = np.stack([np.asarray(counts[topics == t].sum(axis=0)).ravel() for t in ids])
    tf = rows / np.maximum(rows.sum(axis=1, keepdims=True), 1)
    idf = np.log(1 + rows.sum(axis=1).mean() / np.maximum(rows.sum(axis=0), 1))
    vocabulary = vectorizer.get_feature_names_out()
    scores = tf * idf
    return [[str(vocabulary[j]) for j in np.argsort(-row)[:top]] for row in scores]


def majority_of_neighbours(vectors: Array, topics: Topics, k: int = VOTERS) -> Topics:
    """Each unclustered paper moved to the most common topic of its ``k`` nearest clustered
    papers (cosine; ties to the nearer topic)."""
    from service.search.index import flat_index, search

    noise = topics == NOISE_TOPIC
    if not noise.any() or noise.all():
        return topics
    clustered = np.flatnonzero(~noise)
    _, rows = search(flat_index(np.ascontiguousarray(vectors[clustered])), vectors[noise], k)
    votes = topics[clustered][rows]
    out = topics.copy()
    out[noise] = [np.bincount(v - v.min()).argmax() + v.min() for v in votes]
    return out


def evoc_row(
    vectors: Array, texts: list[str], seed: int, encode: Encode | None = None
) -> PeerRow | None:
    """EVoC with its defaults, noise to the 10-NN majority; None without ``evoc``."""
    try:
        import evoc
    except ImportError:
        return None
    start = time.perf_counter()
    found = np.asarray(evoc.EVoC(random_state=seed).fit_predict(vectors), dtype=np.int64)
    noise = found == NOISE_TOPIC
    topics = majority_of_neighbours(vectors, found)
    seconds = time.perf_counter() - start
    words = topic_words(texts, topics)
    return PeerRow("EVoC defaults, noise to 10-NN majority", topics, seconds, noise, words)


def topeax_row(
    vectors: Array, texts: list[str], seed: int, encode: Encode | None = None
) -> PeerRow | None:
    """Turftopic's Topeax with its defaults on our vectors (its vocabulary embedded by
    ``encode``, our model); None without ``turftopic`` or ``encode``."""
    if encode is None:
        return None
    try:
        with warnings.catch_warnings():  # "JAX not found, continuing with NumPy"
            warnings.simplefilter("ignore", UserWarning)
            from turftopic import Topeax
    except ImportError:
        return None
    start = time.perf_counter()
    model = Topeax(encoder=_Encoder(encode), random_state=seed)
    model.fit_transform(texts, embeddings=vectors)
    topics = np.asarray(model.labels_, dtype=np.int64)
    seconds = time.perf_counter() - start
    ids = sorted(set(topics.tolist()) - {NOISE_TOPIC})
    vocabulary = model.get_vocab()
    components = np.asarray(model.components_)
    order = [int(i) for i in getattr(model, "classes_", range(len(components)))]
    words_of = {
        t: [str(vocabulary[j]) for j in np.argsort(-components[i])[:10]]
        for i, t in enumerate(order)
    }
    words = [words_of.get(t, []) for t in ids]
    return PeerRow("Turftopic Topeax defaults", topics, seconds, topics == NOISE_TOPIC, words)


class _Encoder:
    """Our embedder where Topeax wants a sentence encoder (it embeds its vocabulary)."""

    def __init__(self, encode: Encode) -> None:
        self._encode = encode

    def encode(self, texts: list[str], **_: object) -> Array:
        return self._encode(list(texts))


def kmeans_row(vectors: Array, texts: list[str], k: int, seed: int, what: str) -> PeerRow:
    """scikit-learn k-means (seeded) with ``k`` clusters."""
    from sklearn.cluster import KMeans

    start = time.perf_counter()
    topics = KMeans(n_clusters=k, random_state=seed, n_init="auto").fit_predict(vectors)
    topics = np.asarray(topics, dtype=np.int64)
    seconds = time.perf_counter() - start
    return PeerRow(
        f"k-means, k = {k} ({what})",
        topics,
        seconds,
        np.zeros(len(topics), dtype=np.bool_),
        topic_words(texts, topics),
    )


PeerFit = Callable[[Array, list[str], int, Encode | None], PeerRow | None]
OPTIONAL: dict[str, tuple[str, PeerFit]] = {
    "evoc": ("evoc", evoc_row),
    "topeax": ("turftopic", topeax_row),
}
"""Optional peers: name -> (the package that provides it, its fit)."""


def peer_rows(
    vectors: Array,
    texts: list[str],
    seed: int,
    counts: dict[str, int],
    notes: list[str],
    encode: Encode | None = None,
    optional: tuple[str, ...] = tuple(OPTIONAL),
) -> list[PeerRow]:
    """Every installed peer's row (of those named in ``optional``); ``counts``: k-means topic
    counts by what they match (ours, our coarse level); a peer that is not installed (or that
    needs ``encode``, not given) adds a line to ``notes``."""
    rows: list[PeerRow] = []
    for name in optional:
        package, fit = OPTIONAL[name]
        log.info("eval: fitting %s", name)
        row = fit(vectors, texts, seed, encode)
        if row is None:
            notes.append(f"{name} skipped: needs {package} (the dev extra) and our embedder")
        else:
            rows.append(row)
    for what, k in counts.items():
        if 2 <= k < len(vectors):
            rows.append(kmeans_row(vectors, texts, k, seed, what))
    return rows
