"""Topic names and keywords: class-based TF-IDF (BERTopic's c-TF-IDF) over 1-3-grams, re-ranked
against the topic's centroid with the build's embedder and diversified by maximal marginal
relevance (BERTopic's KeyBERTInspired + MaximalMarginalRelevance), see :func:`topic_labels`.

A term's frequency within a topic times ``log(1 + A / f_t)``, with A the mean number of words
per topic and f_t the term's frequency over all topics (the unclustered papers count as one more
class so generic words sink). Terms are counted once per build (:func:`count_terms`); topics and
their coarse groups both read the counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from service.topics.naming import clashes, is_noun_phrase

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
POSSESSIVE = "\u02bcs"
"""A possessive ``'s`` while a text is split into terms: a letter, so the apostrophe neither
ends the phrase (``alzheimer's disease``) nor leaves ``alzheimer`` a name of its own."""
TOKEN_PATTERN = r"(?u)\b[a-zA-Z][a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*(?:\u02bcs)?\b"


def _top_terms(
    scores: npt.NDArray[np.float64], vocabulary: npt.NDArray[Any], count: int
) -> list[str]:
    """Top terms, skipping repeats of chosen ones (``diffusion`` / ``diffusion models``)."""
    return [str(vocabulary[i]) for i in _top_indexes(scores, vocabulary, count, dedupe=True)]


def _top_indexes(
    scores: npt.NDArray[np.float64], vocabulary: npt.NDArray[Any], count: int, dedupe: bool
) -> list[int]:
    chosen: list[int] = []
    folded: list[str] = []
    for term_index in np.argsort(-scores):
        if scores[term_index] <= 0 or len(chosen) >= count:
            break
        term = singular(str(vocabulary[term_index]))
        if dedupe and _repeats(term, folded):
            continue
        if not dedupe and term in folded:
            continue
        chosen.append(int(term_index))
        folded.append(term)
    return chosen


def singular(term: str) -> str:
    """Crude plural folding so a label never shows both ``llm`` and ``llms`` (a possessive
    folds to its noun: ``alzheimer's`` to ``alzheimer``)."""
    return " ".join(_singular_word(w) for w in term.split())


def _singular_word(word: str) -> str:
    if word.endswith("'s"):
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


@dataclass(frozen=True)
class TermCounts:
    """Terms counted per paper (sparse), once per build: topics and groups both read it."""

    per_paper: Any
    vocabulary: npt.NDArray[Any]


VOCABULARY_SAMPLE = 20_000
"""Above this many papers the vocabulary is chosen on a seeded sample of this size, then every
paper is counted against it: memory stays bounded by the vocabulary, not by every trigram of
the corpus (a phrase a topic of 100+ papers uses often is still in the sample)."""
MAX_TERMS = 200_000
"""The vocabulary's cap (most frequent terms first)."""
CANDIDATES = 30
"""c-TF-IDF's best terms per topic that the centroid re-ranking and MMR choose among."""
DIVERSITY = 0.3
"""Maximal marginal relevance: 0 ranks by relevance alone, 1 by novelty alone."""
NAME_WORDS = 4
GENERIC = 0.2
"""A term in more than this share of all papers (``learning`` in an ML corpus) names no topic."""
SINGLE_WORD_SHARE = 0.05
"""A single word names a topic on its own only if at most this share of all papers use it
(``ai``, ``modeling``, ``astronomy`` are in more, in the corpora they are common in)."""
WIDER = 200
"""c-TF-IDF terms per topic looked at when none of the :data:`CANDIDATES` may be its name."""
PHRASE_CANDIDATES = 10
"""Phrases added to the candidates from the wider pool: c-TF-IDF favours single words in large
classes (groups), whose names read better as phrases."""
FRAGMENT = 0.7
"""A term is a fragment when a longer term holding it is used at least this often as it."""
NAME_SHORTLIST = 8
"""The candidates (best first) a name is chosen among before the others are considered."""
CONTRAST = 0.5
"""How much a name's closeness to a sibling topic's centroid counts against it."""
TERM_WEIGHT = 0.1
"""With an embedder, a name's c-TF-IDF score (relative to the topic's best) weighs in this much
beside its cosines, so a phrase the topic's papers use often wins a near tie."""
GROUP_COVERAGE = 0.5
"""For a coarse group, how much the share of its papers that use a phrase adds to the phrase's
score: a group's name should speak for most of its topics, not only for its most distinctive
one (on the 74k map ``text-to-image diffusion models`` named a group that also holds image
editing and autoregressive generation; now ``image generation``). Single words get no such
credit: more papers use them, and they would win as vague one-word names."""
KEYWORDS = 10
"""Keywords kept per topic (the label shows ``label_terms`` of them; quality is scored on 10)."""

PhraseEncoder = Callable[[Sequence[str]], npt.NDArray[np.float32]]
"""Embeds short phrases as the build embeds papers (L2-normalised rows)."""


PHRASE_WORDS = frozenset("model models data large small task tasks high low".split())
"""Stop words that may stand inside a phrase (``large language models``, ``diffusion models``)
though never as a term of their own."""
_BREAKS = re.compile(r"[^\w\s-]+|\s-\s|\s+-|-\s+")
_POSSESSIVES = re.compile(r"(?<=[a-z0-9])['\u2019]s\b")
_TOKEN = re.compile(TOKEN_PATTERN)
_STOP = frozenset(STOP_WORDS)
_NO_START = frozenset({"models", "tasks"})
_NO_END = frozenset({"large", "small", "high", "low"})
_BREAKING = frozenset(ENGLISH_STOP_WORDS) | (ACADEMIC_STOP_WORDS - PHRASE_WORDS)


def terms_of(text: str) -> list[str]:
    """A text's terms: its words (stop words out) and its phrases of 2-3 words. A phrase never
    spans punctuation or a stop word (``(LVLMs)`` or ``of`` end one); of the stop words only
    :data:`PHRASE_WORDS` stand inside one, never at its end if an adjective (``large``) nor at
    its start if a plural noun (``models``). A possessive stays inside a phrase (``alzheimer's
    disease``); a word or phrase that ends in one counts without it (``teacher network`` in
    ``the teacher network's output``)."""
    out: list[str] = []
    for chunk in _BREAKS.split(_POSSESSIVES.sub(POSSESSIVE, text.lower())):
        run: list[str] = []
        for word in [*_TOKEN.findall(chunk), ""]:
            if word and word.removesuffix(POSSESSIVE) not in _BREAKING:
                run.append(word)
                continue
            for i, first in enumerate(run):
                alone = first.removesuffix(POSSESSIVE)
                if alone not in _STOP:
                    out.append(alone)
                if first in _NO_START:
                    continue
                for size in (2, 3):
                    gram = run[i : i + size]
                    if len(gram) == size and gram[-1].removesuffix(POSSESSIVE) not in _NO_END:
                        out.append(
                            " ".join(gram).removesuffix(POSSESSIVE).replace(POSSESSIVE, "'s")
                        )
            run = []
    return out


def _vectorizer(min_df: int, vocabulary: Any = None) -> CountVectorizer:
    return CountVectorizer(
        analyzer=terms_of,
        min_df=min_df,
        max_features=None if vocabulary is not None else MAX_TERMS,
        vocabulary=vocabulary,
        dtype=np.float32,
    )


def count_terms(texts: list[str], seed: int = 0) -> TermCounts | None:
    """Words and 1-3-word phrases per paper, stop words out. On corpora above 1000 papers only
    terms in at least 3 papers; above :data:`VOCABULARY_SAMPLE` papers the vocabulary comes
    from a seeded sample. None when every word is a stop word."""
    try:
        if len(texts) <= VOCABULARY_SAMPLE:
            vectorizer = _vectorizer(1 if len(texts) < 1000 else 3)
            per_paper = vectorizer.fit_transform(texts)
        else:
            from scipy import sparse

            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(len(texts), VOCABULARY_SAMPLE, replace=False))
            rest = np.setdiff1d(np.arange(len(texts)), sample)
            vectorizer = _vectorizer(3)  # each text is analysed once: the sample's counts stay
            counted = vectorizer.fit_transform([texts[i] for i in sample])
            others = _vectorizer(1, vectorizer.vocabulary_).transform([texts[i] for i in rest])
            stacked = sparse.vstack([counted, others]).tocsr()
            per_paper = stacked[np.argsort(np.concatenate([sample, rest]), kind="stable")]
    except ValueError:  # every word is a stop word
        return None
    return TermCounts(per_paper.tocsr(), vectorizer.get_feature_names_out())


def _class_frequencies(
    terms: TermCounts, assignments: npt.NDArray[np.int32]
) -> tuple[Any, Any, npt.NDArray[np.float64], dict[int, int]]:
    """Per class (sorted ids): term counts, papers holding each term, and c-TF-IDF's idf."""
    from scipy import sparse

    per_paper = terms.per_paper
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
    present = per_paper.copy()
    present.data = np.ones_like(present.data)
    holders = sparse.csr_matrix(membership @ present)
    term_totals = np.asarray(frequency.sum(axis=0)).ravel()
    mean_words = float(frequency.sum()) / len(classes)
    idf = np.log1p(mean_words / np.maximum(term_totals, 1.0))
    return frequency, holders, idf, class_of


def keyword_labels(
    terms: TermCounts | None,
    assignments: npt.NDArray[np.int32],
    topic_ids: list[int],
    count: int,
) -> dict[int, list[str]]:
    """c-TF-IDF keywords for each topic id in ``topic_ids``: the papers' term counts summed per
    class with one sparse product, weighted by how rare each term is across classes."""
    if terms is None:
        return {topic_id: [] for topic_id in topic_ids}
    frequency, _, idf, class_of = _class_frequencies(terms, assignments)
    row_totals = np.maximum(np.asarray(frequency.sum(axis=1)).ravel(), 1.0)
    keywords = {}
    for topic_id in topic_ids:
        row = class_of[topic_id]
        scores = frequency.getrow(row).toarray().ravel() / row_totals[row] * idf
        keywords[topic_id] = _top_terms(scores, terms.vocabulary, count)
    return keywords


@dataclass(frozen=True)
class TopicLabel:
    """A topic's short name (1-4 words) and its keywords, best first."""

    name: str
    keywords: list[str]


def mmr(
    relevance: npt.NDArray[np.float32],
    similarity: npt.NDArray[np.float32],
    count: int,
    diversity: float = DIVERSITY,
) -> list[int]:
    """Maximal marginal relevance: indexes of ``count`` items, each the most relevant one
    discounted by its similarity to those already chosen."""
    chosen: list[int] = []
    left = list(range(len(relevance)))
    while left and len(chosen) < count:
        if chosen:
            redundancy = similarity[np.ix_(left, chosen)].max(axis=1)
        else:
            redundancy = np.zeros(len(left), dtype=np.float32)
        scores = (1 - diversity) * relevance[left] - diversity * redundancy
        best = left[int(np.argmax(scores))]
        chosen.append(best)
        left.remove(best)
    return chosen


def _candidates(
    scores: npt.NDArray[np.float64],
    holders: npt.NDArray[np.float64],
    size: int,
    vocabulary: npt.NDArray[Any],
    count: int = CANDIDATES,
) -> list[int]:
    """Indexes of the best c-TF-IDF terms that several of the topic's papers use (a phrase from
    one paper is no name for a topic); plural forms of a chosen term are skipped."""
    support = max(2, int(np.ceil(0.03 * size))) if size >= 2 else 1
    scores = np.where(holders >= support, scores, 0.0)
    return _top_indexes(scores, vocabulary, count, dedupe=False)


def _pick_name(
    ranked: list[str],
    relevance: dict[str, float],
    fits: Callable[[str], bool],
    slack: float,
    shown: Mapping[str, str],
) -> str | None:
    """The most relevant term that ``fits``; a phrase is preferred over a single word, and a
    longer phrase over one it contains (as ``shown``: terms cut short, completed), when within
    ``slack`` of its relevance. None: none fits."""
    free = [t for t in ranked if fits(t)]
    if not free:
        return None
    best = max(free, key=lambda t: relevance[t])
    phrases = [t for t in free if len(t.split()) > 1]
    if phrases and len(best.split()) == 1:
        phrase = max(phrases, key=lambda t: relevance[t])
        if relevance[phrase] >= relevance[best] - slack:
            best = phrase
    inside = f" {shown.get(best, best)} "
    longer = [
        t
        for t in free
        if inside in f" {shown.get(t, t)} "
        and t != best
        and relevance[t] >= relevance[best] - slack / 4
    ]
    return max(longer, key=lambda t: relevance[t]) if longer else best


@dataclass(frozen=True)
class _Proposal:
    """A topic's candidate terms by c-TF-IDF (best first), their scores relative to the best,
    a wider pool for when none of them may be its name, each term's share of the corpus's
    papers, the topic's own share, and the terms that are fragments of a longer one."""

    terms: list[str]
    scores: dict[str, float]
    keywords: list[str]
    """The keyword candidates: c-TF-IDF against every class alone (no sibling contrast: the
    keywords describe the topic, the name tells it apart)."""
    wider: list[str]
    share: dict[str, float]
    own_share: float
    fragments: frozenset[str]
    completions: dict[str, str]
    """Candidates cut short by the 3-word limit -> the phrase a name shows
    (:meth:`_Continuations.completions`)."""
    coverage: dict[str, float]
    """Each term's share of the topic's own papers that use it."""

    def credit(self, term: str, weight: float) -> float:
        """What a phrase's coverage adds to its score (:data:`GROUP_COVERAGE`)."""
        return weight * self.coverage[term] if " " in term else 0.0


def _fragments(counts: dict[str, float]) -> frozenset[str]:
    """Terms the topic's papers mostly use inside a longer term (``deep reinforcement`` in
    ``deep reinforcement learning``): no names of their own."""
    out = set()
    for term, count in counts.items():
        words = term.split()
        for size in range(1, len(words)):
            for start in range(len(words) - size + 1):
                part = " ".join(words[start : start + size])
                if part in counts and count >= FRAGMENT * counts[part]:
                    out.add(part)
    return frozenset(out)


@dataclass(frozen=True)
class _Continuations:
    """Where each 2-word term goes on: its vocabulary index and those of the 3-word terms it
    starts (``large language`` -> ``large language models``, ``large language agents``)."""

    vocabulary: npt.NDArray[Any]
    index: dict[str, int]
    after: dict[str, npt.NDArray[np.intp]]

    @classmethod
    def of(cls, vocabulary: npt.NDArray[Any]) -> _Continuations:
        index = {str(term): i for i, term in enumerate(vocabulary)}
        after: dict[str, list[int]] = {}
        for term, i in index.items():
            words = term.split(" ")
            if len(words) == 3:
                after.setdefault(f"{words[0]} {words[1]}", []).append(i)
        nexts = {tail: np.asarray(rows, dtype=np.intp) for tail, rows in after.items()}
        return cls(vocabulary, index, nexts)

    def completions(self, names: Sequence[str], counts: npt.NDArray[Any]) -> dict[str, str]:
        """Names that end in a 2-word term the topic's papers mostly continue, each with its
        continuation: ``multimodal large language`` ends in ``large language``, which they
        nearly always follow with ``models``, so it reads ``multimodal large language models``
        (``counts``: the topic's count of each vocabulary term). Phrases of 1-3 words are
        counted; this gives a name its fourth word back."""
        out = {}
        for name in names:
            words = name.split(" ")
            tail = " ".join(words[-2:])
            row, nexts = self.index.get(tail), self.after.get(tail)
            if len(words) < 2 or row is None or nexts is None:
                continue
            best = int(nexts[np.argmax(counts[nexts])])
            if counts[best] >= FRAGMENT * counts[row] > 0:
                out[name] = " ".join([*words[:-2], str(self.vocabulary[best])])
        return out


def _fragments_and_completions(
    names: list[str], rows: list[int], counts: npt.NDArray[Any], continuations: _Continuations
) -> tuple[frozenset[str], dict[str, str]]:
    """The candidates that are fragments (:func:`_fragments`, and those cut short whose
    completion is a candidate itself), and the completions of the others cut short."""
    fragments = set(_fragments({n: float(counts[i]) for n, i in zip(names, rows, strict=True)}))
    completed = continuations.completions(names, counts)
    fragments |= {name for name, full in completed.items() if full in names}
    return frozenset(fragments), {n: full for n, full in completed.items() if full not in names}


def _sibling_idf(frequency: Any, rows: list[int]) -> npt.NDArray[np.float64]:
    """c-TF-IDF's idf computed over these classes only: terms the siblings share sink."""
    within = np.asarray(frequency[rows].sum(axis=0)).ravel()
    mean_words = float(within.sum()) / len(rows)
    return np.asarray(np.log1p(mean_words / np.maximum(within, 1.0)), dtype=np.float64)


def _propose(
    terms: TermCounts,
    assignments: npt.NDArray[np.int32],
    topic_ids: list[int],
    siblings: Mapping[int, Sequence[int]] | None,
) -> dict[int, _Proposal]:
    """Each topic's candidates: c-TF-IDF against every class, times (with ``siblings``) the idf
    over the topic's siblings, so a name is what sets the topic apart within its group."""
    frequency, holders, idf, class_of = _class_frequencies(terms, assignments)
    row_totals = np.maximum(np.asarray(frequency.sum(axis=1)).ravel(), 1.0)
    papers_with = np.asarray((terms.per_paper > 0).sum(axis=0)).ravel()
    share = papers_with / max(len(assignments), 1)
    local: dict[tuple[int, ...], npt.NDArray[np.float64]] = {}
    continuations = _Continuations.of(terms.vocabulary)
    proposals: dict[int, _Proposal] = {}
    for topic_id in topic_ids:
        row = class_of[topic_id]
        scores = frequency.getrow(row).toarray().ravel() / row_totals[row] * idf
        size = int(np.sum(assignments == topic_id))
        held = holders.getrow(row).toarray().ravel()
        plain = [
            str(terms.vocabulary[i]) for i in _candidates(scores, held, size, terms.vocabulary)
        ]
        group = tuple(sorted(siblings.get(topic_id, ()))) if siblings is not None else ()
        if len(group) > 1:
            if group not in local:
                local[group] = _sibling_idf(frequency, [class_of[s] for s in group])
            scores = scores * local[group]
        wider = _candidates(scores, held, size, terms.vocabulary, WIDER)
        top = float(scores[wider[0]]) if wider else 1.0
        counts = frequency.getrow(row).toarray().ravel()
        names = [str(terms.vocabulary[i]) for i in wider]
        fragments, completions = _fragments_and_completions(names, wider, counts, continuations)
        phrases = [n for n in names[CANDIDATES:] if " " in n and n not in fragments]
        proposals[topic_id] = _Proposal(
            names[:CANDIDATES] + phrases[:PHRASE_CANDIDATES],
            {n: float(scores[i]) / top for n, i in zip(names, wider, strict=True)},
            plain,
            names,
            {n: float(share[i]) for n, i in zip(names, wider, strict=True)},
            size / max(len(assignments), 1),
            fragments,
            completions,
            {n: float(held[i]) / max(size, 1) for n, i in zip(names, wider, strict=True)},
        )
    return proposals


def _centres(
    vectors: npt.NDArray[np.float32], assignments: npt.NDArray[np.int32], topic_ids: list[int]
) -> dict[int, npt.NDArray[np.float32]]:
    centres = {}
    for topic_id in topic_ids:
        centre = np.asarray(vectors[assignments == topic_id], dtype=np.float32).mean(axis=0)
        centres[topic_id] = centre / max(float(np.linalg.norm(centre)), 1e-12)
    return centres


def _fits(
    proposal: _Proposal, taken: list[str], parents: Sequence[str], strict: bool
) -> Callable[[str], bool]:
    """Whether a term may be a name: at most :data:`NAME_WORDS` words, no near-duplicate of a
    name already given nor a repeat of a parent's (:func:`service.topics.naming.clashes`) and,
    when ``strict``, a noun phrase, no fragment of a longer term, and not in a large share of
    the corpus's papers: a single word in at most :data:`SINGLE_WORD_SHARE`, a phrase in at most
    :data:`GENERIC` or twice the topic's own share (``large language models`` may name the
    group that holds a fifth of a cs corpus). A term cut short is judged as the name it shows
    (its completion)."""

    def fits(term: str) -> bool:
        shown = proposal.completions.get(term, term)
        words = len(shown.split())
        if words > NAME_WORDS or clashes(shown, taken, parents):
            return False
        if not strict:
            return True
        limit = max(GENERIC, 2 * proposal.own_share) if words > 1 else SINGLE_WORD_SHARE
        fragment = term in proposal.fragments
        return not fragment and is_noun_phrase(shown) and proposal.share[term] <= limit

    return fits


def _choose(
    topic_id: int,
    proposal: _Proposal,
    ranked: list[str],
    relevance: dict[str, float],
    taken: list[str],
    parents: Sequence[str],
    slack: float,
) -> str:
    """The name: the best fitting term of the shortlist, else of all candidates, else of the
    wider pool (by c-TF-IDF), else one that is merely distinct, else ``topic N``. A term cut
    short by the 3-word limit is ranked as counted and named as completed."""
    pool = proposal.wider
    attempts = [
        (ranked[:NAME_SHORTLIST], relevance, True),
        (ranked, relevance, True),
        (pool, proposal.scores, True),
        (pool, proposal.scores, False),
    ]
    for terms, scores, strict in attempts:
        fits = _fits(proposal, taken, parents, strict)
        name = _pick_name(terms, scores, fits, slack, proposal.completions)
        if name is not None:
            return proposal.completions.get(name, name)
    return numbered(topic_id, taken, parents)


def numbered(topic_id: int, taken: list[str], parents: Sequence[str] = ()) -> str:
    """``topic N``, or a name made unique by a counter when even that clashes."""
    name, extra = f"topic {topic_id}", 0
    while clashes(name, taken, parents):
        extra += 1
        name = f"t{topic_id}x{extra}"
    return name


def _take(name: str, taken: list[str]) -> str:
    taken.append(name)
    return name


def topic_labels(
    terms: TermCounts | None,
    assignments: npt.NDArray[np.int32],
    topic_ids: list[int],
    vectors: npt.NDArray[np.float32],
    encode: PhraseEncoder | None = None,
    keywords: int = KEYWORDS,
    siblings: Mapping[int, Sequence[int]] | None = None,
    parents: Sequence[str] = (),
    coverage: float = 0.0,
) -> dict[int, TopicLabel]:
    """Names and keywords of the topics ``topic_ids`` (ids in ``assignments``, largest first).

    c-TF-IDF over 1-3-grams proposes :data:`CANDIDATES` terms per topic (with ``siblings``, each
    topic's ids under the same parent, scored against those siblings too). With ``encode`` (the
    build's embedder; KeyBERT-inspired) the candidates are embedded and ranked by cosine to the
    topic's centroid, then diversified by maximal marginal relevance for the keywords; the name
    is ranked by that cosine less :data:`CONTRAST` times its cosine to the nearest sibling's
        centroid, plus :data:`TERM_WEIGHT` times its c-TF-IDF score. Without it the c-TF-IDF order
    stands. No name is a near-duplicate of another, nor says no more than one of ``parents``
    (the level above's names), see :func:`_fits`. ``coverage``: how much a phrase's share of
    the topic's papers adds to its score (:data:`GROUP_COVERAGE` for coarse groups)."""
    taken: list[str] = []
    if terms is None:
        return {t: TopicLabel(_take(numbered(t, taken, parents), taken), []) for t in topic_ids}
    proposals = _propose(terms, assignments, topic_ids, siblings)
    phrase_vectors: dict[str, npt.NDArray[np.float32]] = {}
    if encode is not None:
        unique = sorted({term for p in proposals.values() for term in p.terms + p.keywords})
        if unique:
            encoded = encode(unique)
            phrase_vectors = {term: encoded[i] for i, term in enumerate(unique)}
    centres = _centres(vectors, assignments, topic_ids) if phrase_vectors else {}
    labels: dict[int, TopicLabel] = {}
    for topic_id in topic_ids:  # largest first: the largest topic gets first pick of names
        proposal = proposals[topic_id]
        if not proposal.terms:
            labels[topic_id] = TopicLabel(_take(numbered(topic_id, taken, parents), taken), [])
            continue
        ranked, relevance, keyword_order = proposal.terms, proposal.scores, proposal.keywords
        if phrase_vectors:
            others = [s for s in (siblings or {}).get(topic_id, topic_ids) if s != topic_id]
            keyword_order = _keyword_order(proposal.keywords, phrase_vectors, centres[topic_id])
            closeness = _name_closeness(
                proposal.terms, phrase_vectors, centres[topic_id], [centres[s] for s in others]
            )
            relevance = {t: c + TERM_WEIGHT * proposal.scores[t] for t, c in closeness.items()}
        if coverage:
            relevance = {t: r + proposal.credit(t, coverage) for t, r in relevance.items()}
        if phrase_vectors or coverage:
            ranked = sorted(proposal.terms, key=lambda t: -relevance[t])
        slack = 0.08 if phrase_vectors else 0.6
        chosen = _choose(topic_id, proposal, ranked, relevance, taken, parents, slack)
        name = _take(chosen, taken)
        labels[topic_id] = TopicLabel(name, _dedupe([name, *keyword_order])[:keywords])
    return labels


def _keyword_order(
    candidates: list[str],
    phrase_vectors: dict[str, npt.NDArray[np.float32]],
    centre: npt.NDArray[np.float32],
) -> list[str]:
    """The keywords: maximal marginal relevance over each candidate's cosine to the centre."""
    if not candidates:
        return []
    matrix = np.stack([phrase_vectors[t] for t in candidates])
    return [candidates[i] for i in mmr(matrix @ centre, matrix @ matrix.T, len(candidates))]


def _name_closeness(
    candidates: list[str],
    phrase_vectors: dict[str, npt.NDArray[np.float32]],
    centre: npt.NDArray[np.float32],
    others: list[npt.NDArray[np.float32]],
) -> dict[str, float]:
    """Each candidate's cosine to the centre less :data:`CONTRAST` times its best cosine to a
    sibling's centre."""
    matrix = np.stack([phrase_vectors[t] for t in candidates])
    closeness = (matrix @ centre).astype(np.float64)
    if others:
        closeness = closeness - CONTRAST * (matrix @ np.stack(others).T).max(axis=1)
    return {t: float(c) for t, c in zip(candidates, closeness, strict=True)}


def _dedupe(ranked: list[str]) -> list[str]:
    """Terms in order, dropping one that repeats an earlier one (plural, sub- or super-phrase)."""
    kept: list[str] = []
    folded: list[str] = []
    for term in ranked:
        folded_term = singular(term)
        if _repeats(folded_term, folded):
            continue
        kept.append(term)
        folded.append(folded_term)
    return kept


def _repeats(folded_term: str, folded: list[str]) -> bool:
    """Whether a term (plurals folded) is one of ``folded`` or a sub- or super-phrase of one."""
    padded = f" {folded_term} "
    return any(f" {c} " in padded or padded in f" {c} " for c in folded)


def label_of(keywords: list[str], fallback: str) -> str:
    return ", ".join(keywords[:4]) if keywords else fallback


def clean_for_labels(text: str) -> str:
    """Drop URLs and LaTeX commands, which otherwise become 'keywords'."""
    text = re.sub(r"https?://\S+", " ", text)
    return re.sub(r"\\[a-zA-Z]+|\$[^$]*\$", " ", text)
