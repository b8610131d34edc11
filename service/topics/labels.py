"""Topic labels: class-based TF-IDF keywords (BERTopic's c-TF-IDF).

A term's frequency within a topic times ``log(1 + A / f_t)``, with A the mean number of words
per topic and f_t the term's frequency over all topics (the unclustered papers count as one more
class so generic words sink). Terms are counted once per build (:func:`count_terms`); topics and
their coarse groups both read the counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

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


def label_of(keywords: list[str], fallback: str) -> str:
    return ", ".join(keywords[:4]) if keywords else fallback


def clean_for_labels(text: str) -> str:
    """Drop URLs and LaTeX commands, which otherwise become 'keywords'."""
    text = re.sub(r"https?://\S+", " ", text)
    return re.sub(r"\\[a-zA-Z]+|\$[^$]*\$", " ", text)
