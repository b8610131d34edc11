"""Papers like these: recommendations from positive and negative seed papers, with reasons.

In the spirit of Qdrant's recommend API and Semantic Scholar's positive/negative paper ids. Seeds
are served papers (by id) or pasted text. Two strategies:

- ``average``: one query vector, ``mean(pos)`` alone or ``mean(pos) + (mean(pos) - mean(neg))``
  with negatives (Qdrant's ``average_vector``), searched like free text;
- ``best_score``: candidates are each positive seed's neighbours, scored by their best
  similarity to any positive; a candidate closer to some negative than to every positive is
  ranked after all the others.

Filters (date range, categories, topics) choose the candidate rows *before* ranking (an exact
scan of the matching rows), so a filter never empties a page that a wider search truncated.
Seeds never come back. ``diversity`` re-ranks a larger pool by maximal marginal relevance.
Each result says why: its closest seed, a seed topic it shares, and the key terms it shares with
the seeds, weighted by how rare they are in the corpus (IDF from the build's BM25 index).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.errors import InvalidInput
from service.query.view import BuildView
from service.schemas import (
    NOISE_TOPIC,
    Hit,
    PaperSeed,
    Reason,
    Recommendation,
    RecommendRequest,
    Seed,
    TextSeed,
)
from service.topics.labels import STOP_WORDS

POOL_FACTOR = 5
"""Candidates ranked per result wanted (more room for filters, seeds and diversity)."""
TERMS_SHOWN = 5
_WORD = re.compile(r"[a-z][a-z0-9]+(?:-[a-z0-9]+)*")
_STOP = frozenset(STOP_WORDS)


@dataclass(frozen=True)
class _Seeds:
    names: list[str]
    vectors: npt.NDArray[np.float32]
    rows: list[int]
    """Rows of seeds given by id (excluded from results)."""
    texts: list[str]
    topics: set[int]


def recommend(
    view: BuildView,
    request: RecommendRequest,
    among: npt.NDArray[np.int64] | None = None,
    exclude: Collection[int] = (),
) -> list[Recommendation]:
    """Recommendations for ``request``; ``among`` (rows) replaces the request's filter when
    given (a collection's feed) and rows in ``exclude`` never come back."""
    positive = _resolve(view, request.positive, "positive")
    negative = _resolve(view, request.negative, "negative")
    allowed = view.allowed(request) if among is None else among
    seeds = set(positive.rows) | set(negative.rows) | set(exclude)
    wanted = request.offset + request.limit
    pool = wanted * POOL_FACTOR + len(seeds)
    if request.strategy == "average":
        rows, scores = _average(view, positive, negative, pool, allowed)
    else:
        rows, scores = _best_score(view, positive, negative, pool, allowed)
    visible = set(view.visible(rows))
    keep = [i for i, row in enumerate(rows) if row not in seeds and row in visible]
    rows, scores = [rows[i] for i in keep], [scores[i] for i in keep]
    if request.diversity > 0:
        rows, scores = _mmr(view, rows, scores, wanted, request.diversity)
    shown, shown_scores = rows[request.offset : wanted], scores[request.offset : wanted]
    hits = view.hits(np.asarray(shown_scores), np.asarray(shown), skip=-1, k=len(shown))
    return _with_reasons(view, hits, positive)


def explained(
    view: BuildView, rows: list[int], scores: list[float], positive: list[str]
) -> list[Recommendation]:
    """These rows as recommendations with their scores and the reasons they share with the
    ``positive`` papers (served ids): a ranking made elsewhere (a collection's classifier)."""
    hits = view.hits(np.asarray(scores), np.asarray(rows), skip=-1, k=len(rows))
    seeds = _resolve(view, [PaperSeed(id=i) for i in positive], "positive")
    return _with_reasons(view, hits, seeds)


def _resolve(view: BuildView, seeds: list[Seed], kind: str) -> _Seeds:
    names, rows, texts, vectors = [], [], [], []
    pasted = [s.text for s in seeds if isinstance(s, TextSeed)]
    if pasted and view.queries is None:
        raise InvalidInput("pasted seed text needs an embedding model")
    encoded: Iterator[npt.NDArray[np.float32]] = iter(
        view.queries.encode(pasted) if pasted and view.queries else []
    )
    for number, seed in enumerate(seeds, start=1):
        if isinstance(seed, PaperSeed):
            row = view.row_of(seed.id)
            paper = view.papers_at([row])[row]
            names.append(seed.id)
            rows.append(row)
            texts.append(f"{paper.title} {paper.abstract}")
            vectors.append(view.vectors_at([row])[0])
        else:
            names.append(f"{kind} text {number}")
            texts.append(seed.text)
            vectors.append(next(encoded))
    dim = int(view.manifest.model.dim)
    matrix = np.vstack(vectors) if vectors else np.zeros((0, dim), dtype=np.float32)
    topics = {view.topic_of(r) for r in rows} - {NOISE_TOPIC}
    return _Seeds(names, matrix.astype(np.float32), rows, texts, topics)


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)


def _average(
    view: BuildView,
    positive: _Seeds,
    negative: _Seeds,
    pool: int,
    allowed: npt.NDArray[np.int64] | None,
) -> tuple[list[int], list[float]]:
    query = positive.vectors.mean(axis=0)
    if len(negative.vectors):
        query = 2 * query - negative.vectors.mean(axis=0)
    scores, rows = view.nearest(_unit(query)[None, :], pool, allowed)
    found = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
    return [r for r, _ in found], [s for _, s in found]


def _best_score(
    view: BuildView,
    positive: _Seeds,
    negative: _Seeds,
    pool: int,
    allowed: npt.NDArray[np.int64] | None,
) -> tuple[list[int], list[float]]:
    _, rows = view.nearest(positive.vectors, pool, allowed)
    candidates = sorted({int(r) for r in rows.ravel() if r >= 0})
    if not candidates:
        return [], []
    vectors = view.vectors_at(candidates)
    best_positive = (vectors @ positive.vectors.T).max(axis=1)
    if len(negative.vectors):
        best_negative = (vectors @ negative.vectors.T).max(axis=1)
        demoted = best_negative > best_positive
    else:
        demoted = np.zeros(len(candidates), dtype=bool)
    order = sorted(range(len(candidates)), key=lambda i: (bool(demoted[i]), -best_positive[i]))
    return [candidates[i] for i in order], [float(best_positive[i]) for i in order]


def _mmr(
    view: BuildView, rows: list[int], scores: list[float], limit: int, diversity: float
) -> tuple[list[int], list[float]]:
    """Maximal marginal relevance: each pick maximises (1 - d) * relevance - d * similarity to
    the papers already picked."""
    if not rows:
        return rows, scores
    vectors = view.vectors_at(rows)
    relevance = np.asarray(scores)
    picked: list[int] = []
    closest = np.full(len(rows), -np.inf)
    left = set(range(len(rows)))
    while left and len(picked) < limit:
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        value = (1 - diversity) * relevance - diversity * penalty
        best = max(left, key=lambda i: value[i])
        picked.append(best)
        left.discard(best)
        closest = np.maximum(closest, vectors @ vectors[best])
    return [rows[i] for i in picked], [scores[i] for i in picked]


def _terms(text: str) -> Counter[str]:
    return Counter(w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2)


def _with_reasons(view: BuildView, hits: list[Hit], positive: _Seeds) -> list[Recommendation]:
    rows = [view.row_of(hit.id) for hit in hits]
    papers = view.papers_at(rows)
    seed_terms = Counter[str]()
    for text in positive.texts:
        seed_terms.update(set(_terms(text)))
    result_terms = {r: _terms(f"{papers[r].title} {papers[r].abstract}") for r in rows}
    documents = len(result_terms) + len(positive.texts)
    frequency = Counter[str](seed_terms)
    for counts in result_terms.values():
        frequency.update(set(counts))
    shared_anywhere = sorted(
        {t for counts in result_terms.values() for t in counts} & set(seed_terms)
    )
    idf = view.term_idf(shared_anywhere) or {
        t: math.log((documents + 1) / frequency[t]) for t in shared_anywhere
    }
    similarity = view.vectors_at(rows) @ positive.vectors.T
    out = []
    for i, (hit, row) in enumerate(zip(hits, rows, strict=True)):
        shared = [t for t in result_terms[row] if t in seed_terms]
        weight = {t: result_terms[row][t] * seed_terms[t] * idf[t] for t in shared}
        closest = int(np.argmax(similarity[i]))
        shares_topic = hit.topic_id in positive.topics
        out.append(
            Recommendation(
                **hit.model_dump(),
                reason=Reason(
                    closest_seed=positive.names[closest],
                    seed_similarity=round(float(similarity[i][closest]), 6),
                    shared_topic=hit.topic_id if shares_topic else None,
                    shared_topic_label=hit.topic_label if shares_topic else None,
                    terms=sorted(shared, key=lambda t: (-weight[t], t))[:TERMS_SHOWN],
                ),
            )
        )
    return out
