"""A collection's own classifier: thumbs up and down teach its feed (as arxiv-sanity-lite's SVM
per tag and Scholar Inbox's per-user model).

With at least :data:`MIN_POSITIVE` positive papers (seeds and thumbs up) and :data:`MIN_NEGATIVE`
negative ones (negative seeds and thumbs down), a logistic regression (scikit-learn,
``class_weight="balanced"``) is fitted on their embeddings and ranks the feed by its decision
value; with fewer, the feed keeps ranking by similarity to the seeds. A fit takes milliseconds
and is cached per build view, view version and lists of papers, so a new rating refits once.
:data:`BACKGROUND` random papers join the negatives, as arxiv-sanity-lite trains on every
paper not tagged. The papers closest to the decision boundary are those a rating would teach
the most ("help me decide"). ``paperscope bench feedback`` measures the switch on simulated
readers (docs/quality.md).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Collection
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from service.query.recommend import explained
from service.query.view import BuildView
from service.schemas import MAX_SEEDS, Recommendation

MIN_POSITIVE = 3
"""Positive papers (seeds and thumbs up) a classifier needs."""
MIN_NEGATIVE = 3
"""Negative papers (negative seeds and thumbs down) a classifier needs."""
C = 1.0
"""Inverse regularisation strength of the logistic regression (measured: docs/quality.md)."""
BACKGROUND = 200
"""Random served papers added as negatives (at most half the corpus), as arxiv-sanity-lite
trains on every paper not tagged: measured better than the ratings alone (docs/quality.md)."""
BLOCK = 8192
"""Rows scored at once (a block's vectors are copied out of the memory map)."""


class Linear(NamedTuple):
    """A fitted linear model: score = vectors @ weights + bias (> 0: the positive side)."""

    weights: npt.NDArray[np.float32]
    bias: float

    def scores(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(vectors @ self.weights + self.bias, dtype=np.float32)


def enough(positives: int, negatives: int) -> bool:
    """Whether this many positive and negative papers get a classifier."""
    return positives >= MIN_POSITIVE and negatives >= MIN_NEGATIVE


def fit(positive: npt.NDArray[np.float32], negative: npt.NDArray[np.float32]) -> Linear:
    """A logistic regression separating ``positive`` from ``negative`` vectors, classes weighted
    by their sizes (a few downs count as much as many ups)."""
    from sklearn.linear_model import LogisticRegression  # loaded on the first fit only

    features = np.vstack([positive, negative]).astype(np.float32)
    labels = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=1000)
    model.fit(features, labels)
    return Linear(np.asarray(model.coef_[0], dtype=np.float32), float(model.intercept_[0]))


_lock = threading.Lock()
_models: weakref.WeakKeyDictionary[BuildView, dict[tuple[object, ...], Linear]] = (
    weakref.WeakKeyDictionary()
)
CACHED = 64
"""Fitted models kept per build view (one per collection and ratings version)."""


def model_for(view: BuildView, positive: list[str], negative: list[str]) -> Linear | None:
    """The classifier of these served positive and negative papers (ids), from the cache when
    fitted before; None when there are too few of either."""
    if not enough(len(positive), len(negative)):
        return None
    key = (view.version, tuple(positive), tuple(negative))
    with _lock:
        found = _models.get(view, {}).get(key)
    if found is not None:
        return found
    rows = [view.row_of(i) for i in [*positive, *negative]]
    vectors = view.vectors_at(rows)
    back = background(view, set(rows[: len(positive)]))
    model = fit(vectors[: len(positive)], np.vstack([vectors[len(positive) :], back]))
    with _lock:
        cache = _models.setdefault(view, {})
        if len(cache) >= CACHED:
            cache.pop(next(iter(cache)))
        cache[key] = model
    return model


def background(view: BuildView, positive: set[int]) -> npt.NDArray[np.float32]:
    """Vectors of :data:`BACKGROUND` served papers drawn at random (the same draw for every
    collection of a view), positive ones left out."""
    rows = candidates(view, None, ())
    count = min(BACKGROUND, len(rows) // 2)
    drawn = np.random.default_rng(0).choice(rows, size=count, replace=False)
    return view.vectors_at([r for r in drawn.tolist() if r not in positive])


def candidates(
    view: BuildView, among: npt.NDArray[np.int64] | None, exclude: Collection[int]
) -> npt.NDArray[np.int64]:
    """The rows a feed may list: ``among`` (else every served row), less hidden and excluded."""
    rows = among if among is not None else np.arange(view.size + len(view.live.papers))
    gone = set(exclude) | view.hidden
    if gone:
        rows = rows[~np.isin(rows, np.fromiter(gone, dtype=np.int64, count=len(gone)))]
    return rows.astype(np.int64)


def scored(view: BuildView, model: Linear, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """The model's decision value of each row."""
    out = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), BLOCK):
        block = rows[start : start + BLOCK].tolist()
        out[start : start + len(block)] = model.scores(view.vectors_at(block))
    return out


def top(
    scores: npt.NDArray[np.float32], rows: npt.NDArray[np.int64], k: int
) -> tuple[list[int], list[float]]:
    """The k rows of highest score, best first (ties by row)."""
    order = np.lexsort((rows, -scores))[:k]
    return rows[order].tolist(), scores[order].tolist()


def least_sure(
    scores: npt.NDArray[np.float32], rows: npt.NDArray[np.int64], k: int
) -> tuple[list[int], list[float]]:
    """The k rows closest to the decision boundary (smallest |score|) first."""
    order = np.lexsort((rows, np.abs(scores)))[:k]
    return rows[order].tolist(), scores[order].tolist()


def learned_feed(
    view: BuildView,
    positive: list[str],
    negative: list[str],
    among: npt.NDArray[np.int64] | None,
    exclude: Collection[int],
    limit: int,
) -> tuple[list[Recommendation], str] | None:
    """A feed ranked by the classifier of these positive and negative papers (served ids),
    with a note saying so; None when there are too few of either."""
    model = model_for(view, positive, negative)
    if model is None:
        return None
    rows = candidates(view, among, set(exclude) | view.rows_of([*positive, *negative]))
    shown, values = top(scored(view, model, rows), rows, limit)
    note = f"a classifier fitted to {len(positive)} positive and {len(negative)} negative papers"
    return explained(view, shown, values, positive[-MAX_SEEDS:]), note


def seeds_note(positives: int, negatives: int) -> str:
    """Why a feed ranks by its seeds: how many more papers of each kind a classifier needs."""
    wanted = [
        f"{need - have} more {kind}"
        for need, have, kind in (
            (MIN_POSITIVE, positives, "thumbs up"),
            (MIN_NEGATIVE, negatives, "thumbs down"),
        )
        if have < need
    ]
    return (
        f"similarity to the collection's papers ({positives} positive, {negatives} negative); "
        f"{' and '.join(wanted)} switch it to a classifier"
    )


def least_sure_feed(
    view: BuildView, positive: list[str], negative: list[str], exclude: Collection[int], k: int
) -> list[Recommendation] | None:
    """The k unseen papers the classifier is least sure about; None without a classifier."""
    model = model_for(view, positive, negative)
    if model is None:
        return None
    rows = candidates(view, None, set(exclude) | view.rows_of([*positive, *negative]))
    shown, values = least_sure(scored(view, model, rows), rows, k)
    return explained(view, shown, values, positive[-MAX_SEEDS:])
