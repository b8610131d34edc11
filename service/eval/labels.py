"""Label quality: NPMI coherence and topic diversity of topics' top keywords.

- **NPMI coherence** (Bouma 2009; as in BERTopic's and OCTIS's evaluations, with document
  co-occurrence): for each pair of a topic's top-N terms, ``log(P(a, b) / (P(a) P(b)))`` over
  ``-log P(a, b)``, where ``P`` counts the corpus documents holding the terms; a pair that never
  co-occurs scores -1 and one that co-occurs in every document 1. Averaged over the pairs of a
  topic, then over topics (topics with fewer than two terms are skipped).
- **Topic diversity** (Dieng et al. 2020): the share of distinct terms among all topics' top-N.

A term is a word or a phrase; a document holds it when its words, lowercased, contain the term's
words in a row (``offline reinforcement learning``), so keywords of one word (BERTopic's default)
and phrases (ours) are scored over the same corpus the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import combinations

WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
TOP_N = 10


def _words(text: str) -> list[str]:
    """Lowercased words; a hyphenated word also counts as its parts (``vision-language``)."""
    out: list[str] = []
    for word in WORD.findall(text.lower()):
        out.append(word)
        if "-" in word:
            out.extend(part for part in word.split("-") if part)
    return out


def documents_holding(corpus: Sequence[str], terms: set[str]) -> tuple[dict[str, set[int]], int]:
    """For each term, the documents (indexes) that hold it; and the number of documents."""
    lengths = {len(term.split()) for term in terms} or {1}
    longest = max(lengths)
    held: dict[str, set[int]] = {term: set() for term in terms}
    for doc, text in enumerate(corpus):
        words = _words(text)
        grams = {
            " ".join(words[i : i + size])
            for size in range(1, longest + 1)
            for i in range(len(words) - size + 1)
        }
        for term in grams & terms:
            held[term].add(doc)
    return held, len(corpus)


def _npmi(a: set[int], b: set[int], n: int) -> float:
    both = len(a & b)
    if both == 0:
        return -1.0
    joint = both / n
    if joint >= 1.0:
        return 1.0
    return math.log(joint / ((len(a) / n) * (len(b) / n))) / -math.log(joint)


def npmi_coherence(
    topics: Sequence[Sequence[str]], corpus: Sequence[str], top_n: int = TOP_N
) -> float:
    """Mean NPMI of each topic's top ``top_n`` terms over the corpus (document co-occurrence)."""
    tops = [[t.lower() for t in terms[:top_n]] for terms in topics]
    held, n = documents_holding(corpus, {t for terms in tops for t in terms})
    per_topic = []
    for terms in tops:
        pairs = list(combinations(terms, 2))
        if pairs and n:
            per_topic.append(sum(_npmi(held[a], held[b], n) for a, b in pairs) / len(pairs))
    return round(sum(per_topic) / len(per_topic), 4) if per_topic else 0.0


def topic_diversity(topics: Sequence[Sequence[str]], top_n: int = TOP_N) -> float:
    """The share of distinct terms among all topics' top ``top_n`` terms (1: no term repeats)."""
    terms = [t.lower() for topic in topics for t in topic[:top_n]]
    return round(len(set(terms)) / len(terms), 4) if terms else 0.0
