"""Does feedback teach the feed? Simulated readers on a dated build (``paperscope bench feedback``).

Each reader has an interest: an arXiv category (listed anywhere in a paper's categories) or one
of the build's topics. "Today" is a day of the build; the reader starts a collection from one
paper of their interest dated up to today, then reads today's feed (the papers of the
``window`` days up to today), rating the top ``batch`` unseen papers of the feed as shown: up
when the paper is of their interest, down otherwise. The feed they see ranks as the product
does (``classifier+bg``): by the seeds (recommend's ``average``: the mean of the positives
moved away from the mean of the negatives) until there are
:data:`~service.query.classifier.MIN_POSITIVE` positive and
:data:`~service.query.classifier.MIN_NEGATIVE` negative papers, by the classifier after.

After n ratings, each ranking orders the next ``days`` days' papers (none seen before) and is
scored by precision@10 against the reader's interest: ``seeds`` (the same ratings as seeds),
``classifier`` (a logistic regression on positive vs negative papers; the seeds' ranking when
there are too few of either), and ``classifier+bg`` (the product's: the same with
``background`` random papers dated up to today as extra negatives, as arxiv-sanity-lite trains
on every paper not tagged). Only interests with at least 10 papers in the next days count.
Nothing is embedded: the build's stored vectors are read (memory-mapped, read-only).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from service.artifacts import BuildFolder, current_build_dir
from service.config import BUILDS
from service.query.classifier import C, enough, fit

CHECKPOINTS = (0, 5, 10, 20, 40, 80)
METHODS = ("seeds", "classifier", "classifier+bg")
TFIDF = "classifier+bg+tfidf"
"""With ``--tfidf``: the product's classifier on the embeddings and TF-IDF of title and abstract
side by side (as arxiv-sanity-lite's SVM uses TF-IDF)."""
PRODUCT = "classifier+bg"
"""The ranking the product's feed uses (:mod:`service.query.classifier`): the reader rates it."""
AT = 10


@dataclass(frozen=True)
class Corpus:
    vectors: npt.NDArray[np.float32]
    dates: list[str | None]
    categories: list[list[str]]
    topics: npt.NDArray[np.int32]
    tfidf: Any = None
    """TF-IDF of each title and abstract (a scipy sparse matrix), with ``--tfidf``."""


@dataclass
class Reader:
    """One simulated reader's interest (which rows they like) and ratings so far."""

    liked: npt.NDArray[np.bool_]
    positive: list[int]
    negative: list[int] = field(default_factory=list)


def load(data_dir: Path, tfidf: bool) -> Corpus:
    build = current_build_dir(data_dir / BUILDS)
    if build is None:
        raise SystemExit(f"error: no build in {data_dir}")
    folder = BuildFolder(build)
    shown = folder.papers().summaries()
    vectors = np.array(folder.embeddings(), dtype=np.float32)  # in memory: read many times
    weights = None
    if tfidf:
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [f"{t} {a}" for t, a in zip(shown.titles, folder.papers().abstracts(), strict=True)]
        vectorizer = TfidfVectorizer(
            stop_words="english", sublinear_tf=True, min_df=2, max_features=50_000
        )
        weights = vectorizer.fit_transform(texts).astype(np.float32).tocsr()
    return Corpus(vectors, shown.dates, shown.categories, folder.assignments(), weights)


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def seed_scores(
    corpus: Corpus, reader: Reader, rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """Recommend's ``average`` ranking: mean(pos), moved away from mean(neg) when there are any."""
    query = corpus.vectors[reader.positive].mean(axis=0)
    if reader.negative:
        query = 2 * query - corpus.vectors[reader.negative].mean(axis=0)
    return np.asarray(corpus.vectors[rows] @ _unit(query), dtype=np.float32)


def ranking(
    corpus: Corpus, reader: Reader, rows: npt.NDArray[np.int64], method: str, background: list[int]
) -> npt.NDArray[np.float32]:
    """Scores of ``rows`` by ``method``; the seeds' ranking while there are too few ratings."""
    if method == "seeds" or not enough(len(reader.positive), len(reader.negative)):
        return seed_scores(corpus, reader, rows)
    negative = list(reader.negative)
    if "+bg" in method:
        positive = set(reader.positive)
        negative += [r for r in background if r not in positive]
    if method == TFIDF:
        return _tfidf_scores(corpus, reader.positive, negative, rows)
    fitted = fit(corpus.vectors[reader.positive], corpus.vectors[negative])
    return fitted.scores(corpus.vectors[rows])


def _features(corpus: Corpus, rows: list[int] | npt.NDArray[np.int64]) -> Any:
    from scipy import sparse

    dense = sparse.csr_matrix(corpus.vectors[rows])
    return sparse.hstack([dense, corpus.tfidf[rows]]).tocsr()


def _tfidf_scores(
    corpus: Corpus, positive: list[int], negative: list[int], rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    from sklearn.linear_model import LogisticRegression

    labels = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=1000)
    model.fit(_features(corpus, [*positive, *negative]), labels)
    return np.asarray(model.decision_function(_features(corpus, rows)), dtype=np.float32)


def precision(
    reader: Reader, rows: npt.NDArray[np.int64], scores: npt.NDArray[np.float32]
) -> float:
    best = rows[np.argsort(-scores, kind="stable")[:AT]]
    return float(reader.liked[best].mean())


def rate_feed(
    corpus: Corpus,
    reader: Reader,
    window: npt.NDArray[np.int64],
    background: list[int],
    batch: int,
) -> None:
    """The reader rates the top ``batch`` unseen papers of today's feed as the product ranks it."""
    seen = np.isin(window, [*reader.positive, *reader.negative])
    rows = window[~seen]
    scores = ranking(corpus, reader, rows, PRODUCT, background)
    for row in rows[np.argsort(-scores, kind="stable")[:batch]].tolist():
        (reader.positive if reader.liked[row] else reader.negative).append(row)


def days_between(corpus: Corpus, after: str, until: str) -> npt.NDArray[np.int64]:
    return np.array(
        [r for r, d in enumerate(corpus.dates) if d is not None and after < d <= until],
        dtype=np.int64,
    )


def interests(corpus: Corpus, upcoming: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[np.bool_]]:
    """Every category and topic with at least 10 papers among ``upcoming``: name -> liked rows."""
    found: dict[str, npt.NDArray[np.bool_]] = {}
    names = sorted({c for r in upcoming.tolist() for c in corpus.categories[r]})
    for name in names:
        liked = np.array([name in cats for cats in corpus.categories], dtype=bool)
        if liked[upcoming].sum() >= AT:
            found[f"category {name}"] = liked
    for topic in sorted(set(corpus.topics[upcoming].tolist()) - {-1}):
        liked = corpus.topics == topic
        if liked[upcoming].sum() >= AT:
            found[f"topic {topic}"] = liked
    return found


def simulate(
    corpus: Corpus,
    reader: Reader,
    window: npt.NDArray[np.int64],
    upcoming: npt.NDArray[np.int64],
    background: list[int],
    batch: int,
) -> dict[int, tuple[bool, list[float]]]:
    """n ratings -> (classifier in use, precision@10 of each method on the upcoming papers)."""
    out = {}
    rated = 0
    for n in CHECKPOINTS:
        while rated < n:
            rate_feed(corpus, reader, window, background, min(batch, n - rated))
            rated = len(reader.positive) + len(reader.negative) - 1
        on = enough(len(reader.positive), len(reader.negative))
        out[n] = (
            on,
            [
                precision(reader, upcoming, ranking(corpus, reader, upcoming, m, background))
                for m in _methods(corpus)
            ],
        )
    return out


def measure(
    data_dir: Path,
    today: str | None,
    days: int,
    window: int,
    seeds: int,
    background: int,
    batch: int,
    tfidf: bool = False,
) -> None:
    corpus = load(data_dir, tfidf)
    dated = sorted(d for d in corpus.dates if d is not None)
    day = today or dated[int(len(dated) * 0.9)]
    until = (date.fromisoformat(day) + timedelta(days=days)).isoformat()
    start = (date.fromisoformat(day) - timedelta(days=window)).isoformat()
    upcoming, pool = days_between(corpus, day, until), days_between(corpus, start, day)
    history = days_between(corpus, "", day)
    rng = random.Random(0)
    back = rng.sample(history.tolist(), min(background, len(history)))
    found = interests(corpus, upcoming)
    print(
        f"today {day}: {len(pool)} papers in the {window} days up to it (today's feed), "
        f"{len(upcoming)} in the next {days} days; {len(found)} interests x {seeds} seeds"
    )
    jobs = [
        (name.split()[0], liked, seed)
        for name, liked in found.items()
        for seed in _some(rng, [r for r in history.tolist() if liked[r]], seeds)
    ]
    results: dict[str, list[dict[int, tuple[bool, list[float]]]]] = {"category": [], "topic": []}
    with threadpool_limits(limits=1):  # tiny fits: threads only hand work to and fro
        for kind, liked, seed in jobs:
            reader = Reader(liked, [seed])
            results[kind].append(simulate(corpus, reader, pool, upcoming, back, batch))
    for kind, runs in results.items():
        print(table(kind, runs, _methods(corpus)))


def _methods(corpus: Corpus) -> tuple[str, ...]:
    return METHODS if corpus.tfidf is None else (*METHODS, TFIDF)


def table(
    kind: str, runs: list[dict[int, tuple[bool, list[float]]]], methods: tuple[str, ...]
) -> str:
    lines = [
        f"\ninterest = {kind} ({len(runs)} readers): precision@{AT} of the next days' papers",
        "",
        "| ratings | on classifier | " + " | ".join(methods) + " |",
        "|---:|---:|" + "---:|" * len(methods),
    ]
    for n in CHECKPOINTS:
        on = np.mean([run[n][0] for run in runs]) if runs else 0.0
        means = [
            np.mean([run[n][1][i] for run in runs]) if runs else 0.0 for i, _ in enumerate(methods)
        ]
        cells = " | ".join(f"{m:.3f}" for m in means)
        lines.append(f"| {n} | {on:.0%} | {cells} |")
    return "\n".join(lines)


def _some(rng: random.Random, rows: list[int], n: int) -> list[int]:
    return rng.sample(rows, min(n, len(rows)))
