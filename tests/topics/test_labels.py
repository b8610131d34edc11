"""Topic labels: keywords without stop words or repeats, text cleaned of URLs and LaTeX."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.embed.backends import Embedder
from service.schemas import TopicParams
from service.topics import labels as labels_module
from service.topics.cluster import default_sizes, fit_topics
from service.topics.labels import (
    clean_for_labels,
    count_terms,
    keyword_labels,
    mmr,
    singular,
    terms_of,
    topic_labels,
)
from service.topics.naming import covered, duplicate_counts, is_noun_phrase, near_duplicate


def test_keyword_labels_skip_stop_words_and_repeats() -> None:
    texts = ["we propose a novel method for diffusion models"] * 3 + ["graph neural networks"] * 3
    assignments = np.array([0, 0, 0, 1, 1, 1], dtype=np.int32)
    keywords = keyword_labels(count_terms(texts), assignments, [0, 1], count=3)
    assert "propose" not in keywords[0] and "novel" not in keywords[0]
    assert any("diffusion" in k for k in keywords[0])
    flat = " ".join(keywords[0])
    assert flat.count("diffusion") == 1


def test_clean_for_labels_drops_urls_and_latex() -> None:
    cleaned = clean_for_labels(r"See https://github.com/x/y and $\mathbb{R}^d$ with \emph{care}")
    assert "github" not in cleaned and "mathbb" not in cleaned and "emph" not in cleaned


def test_phrases_stop_at_punctuation_and_stop_words() -> None:
    terms = terms_of("Large vision-language models (LVLMs) for offline reinforcement learning.")
    assert "large vision-language models" in terms and "offline reinforcement learning" in terms
    assert "lvlms" in terms and not any("models lvlms" in t for t in terms)
    assert "for" not in terms and "models" not in terms  # stop words are no terms of their own
    assert not any(t.startswith("models ") or t.endswith(" large") for t in terms)


def test_a_possessive_stays_inside_a_phrase() -> None:
    terms = terms_of("Alzheimer's disease; it's the teacher network\u2019s ability that counts.")
    assert "alzheimer's disease" in terms and "alzheimer" in terms and "disease" in terms
    assert "teacher network" in terms and "teacher network's ability" in terms
    assert not any(t.endswith("'s") or "\u02bc" in t or t.startswith("it") for t in terms)
    assert singular("alzheimer's disease") == singular("alzheimer disease")


WORD = st.tuples(
    st.sampled_from(["teacher", "network", "model", "it", "Alzheimer", "a"]),
    st.sampled_from(["", "'s", "\u2019s", "\u02bcs", "'", "s", "\u02bc"]),
    st.sampled_from([" ", " ", "-", ". ", "'", ""]),
).map("".join)


@given(st.lists(WORD, max_size=12).map("".join))
def test_terms_are_words_or_phrases_whatever_the_text(text: str) -> None:
    for term in terms_of(text):
        words = term.split(" ")
        assert 1 <= len(words) <= 3 and all(words), term
        assert "\u02bc" not in term and not term.endswith("'s"), term
        assert all(w.count("'") <= (1 if w.endswith("'s") else 0) for w in words), term


def test_mmr_trades_relevance_for_novelty() -> None:
    relevance = np.array([1.0, 0.99, 0.5], dtype=np.float32)
    similarity = np.array([[1, 0.99, 0], [0.99, 1, 0], [0, 0, 1]], dtype=np.float32)
    assert mmr(relevance, similarity, 2, diversity=0.0) == [0, 1]
    assert mmr(relevance, similarity, 2, diversity=0.5) == [0, 2]


CORPUS = {
    "offline reinforcement learning": [
        "Offline reinforcement learning learns a policy from a fixed dataset of transitions.",
        "Conservative offline reinforcement learning avoids overestimating unseen actions.",
        "We benchmark offline reinforcement learning on robot control datasets.",
    ],
    "protein structure prediction": [
        "Protein structure prediction from amino acid sequences with attention.",
        "Accurate protein structure prediction for antibodies and enzymes.",
        "Protein structure prediction benchmarks for folding of novel sequences.",
    ],
}


def test_topics_are_named_by_phrases_near_their_centroid(embedder: Embedder) -> None:
    texts = [t for group in CORPUS.values() for t in group]
    assignments = np.array([0, 0, 0, 1, 1, 1], dtype=np.int32)
    vectors = embedder.encode(texts)
    for encode in (embedder.encode, None):
        labels = topic_labels(count_terms(texts), assignments, [0, 1], vectors, encode)
        assert [labels[t].name for t in (0, 1)] == list(CORPUS), encode
        for label in labels.values():
            assert 1 <= len(label.name.split()) <= 4 and label.keywords[0] == label.name
            assert len(set(label.keywords)) == len(label.keywords) <= 10


def test_large_corpora_count_terms_against_a_sampled_vocabulary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kinds = ["proteins", "crystals", "polymers", "catalysts"]
    texts = [f"graph neural networks for {kinds[i % 4]}" for i in range(60)]
    monkeypatch.setattr(labels_module, "VOCABULARY_SAMPLE", 20)
    sampled = count_terms(texts)
    assert sampled is not None and sampled.per_paper.shape[0] == 60
    assert "graph neural networks" in set(sampled.vocabulary.tolist())
    column = list(sampled.vocabulary).index("graph neural networks")
    assert sampled.per_paper[:, column].sum() == 60  # every paper counted, not just the sample
    vocabulary = list(sampled.vocabulary)
    for row in range(60):  # each paper's counts are in its own row
        assert sampled.per_paper[row, vocabulary.index(kinds[row % 4])] == 1
        assert sampled.per_paper[row].sum() == sampled.per_paper[row % 4].sum()


CLOSE_TOPICS = {
    "detectors": "Gravitational wave detectors: interferometer noise and mirror coatings in run",
    "sources": "Gravitational wave sources: binary black hole mergers and neutron stars in event",
    "proteins": "Protein folding with attention over amino acid sequences for enzyme",
    "compilers": "Compiler optimisation of loop nests and register allocation for kernel",
    "speech": "Speech recognition of accented speakers with acoustic models for corpus",
}


def test_two_close_topics_get_names_that_tell_them_apart(embedder: Embedder) -> None:
    sizes = [24, 22, 20, 18, 16]
    texts = [
        f"{text} {i}."
        for text, n in zip(CLOSE_TOPICS.values(), sizes, strict=True)
        for i in range(n)
    ]
    vectors = embedder.encode(texts)
    neighbours, size, samples = default_sizes(len(texts))
    params = TopicParams(
        umap_components=5,
        umap_neighbors=neighbours,
        min_cluster_size=size,
        min_samples=samples,
        cluster_selection="eom",
        seed=7,
    )
    model = fit_topics(vectors, texts, params, label_terms=3, encode=embedder.encode)
    topics = [t for t in model.topics if t.id >= 0]
    assert len(topics) == 5 and model.groups
    close = [t.name for t in topics if t.members[0] < sum(sizes[:2])]
    assert len(close) == 2 and not near_duplicate(*close), close
    names = [t.name for t in topics]
    assert duplicate_counts(names)[:2] == (0, 0), names
    groups = [g.name for g in model.groups]
    assert duplicate_counts(groups)[:2] == (0, 0), groups
    assert not any(covered(name, group) for name in names for group in groups), (names, groups)
    assert all(is_noun_phrase(name) for name in names + groups), (names, groups)


WORDS = [
    "wave",
    "waves",
    "gravitational",
    "gravitational-wave",
    "cosmology",
    "cosmological",
    "dark",
    "matter",
    "deep",
    "learning",
    "neural",
    "networks",
    "detector",
    "detectors",
    "ai",
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.lists(st.sampled_from(WORDS), min_size=1, max_size=6)),
        min_size=2,
        max_size=40,
    ),
    st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join), max_size=3),
    st.booleans(),
)
def test_names_never_repeat_or_nearly_repeat(
    papers: list[tuple[int, list[str]]], parents: list[str], grouped: bool
) -> None:
    ids = sorted({topic for topic, _ in papers})
    assignments = np.array([topic for topic, _ in papers], dtype=np.int32)
    texts = [" ".join(words) for _, words in papers]
    vectors = np.ones((len(papers), 4), dtype=np.float32)
    siblings = {t: [s for s in ids if s % 2 == t % 2] for t in ids} if grouped else None
    labels = topic_labels(
        count_terms(texts), assignments, ids, vectors, None, 10, siblings, parents
    )
    names = [labels[t].name for t in ids]
    for i, name in enumerate(names):
        assert not any(near_duplicate(name, other) for other in names[:i]), names
        assert not any(covered(name, parent) for parent in parents), (name, parents)


def test_a_phrase_cut_short_by_the_three_word_limit_gets_its_last_word_back() -> None:
    # topic 0's papers all say "multimodal large language models": terms are counted up to 3
    # words, so its best term is "multimodal large language", which ends in "large language",
    # always followed by "models" there
    images = ["charts", "scans", "satellite photos", "documents", "street scenes", "menus"]
    code = ["python", "rust", "sql", "java", "shell", "haskell"]
    texts = [
        f"Multimodal large language models for {thing}. We test multimodal large language "
        f"models on {thing}."
        for thing in images
    ] + [f"Code generation in {language}, and code generation tools." for language in code]
    assignments = np.array([0] * len(images) + [1] * len(code), dtype=np.int32)
    vectors = np.ones((len(texts), 4), dtype=np.float32)
    labels = topic_labels(count_terms(texts), assignments, [0, 1], vectors, None, 10)
    assert labels[0].name == "multimodal large language models", labels[0].name
    assert not labels[1].name.startswith("topic"), labels[1].name  # the other keeps a name


def test_a_group_is_named_by_a_phrase_most_of_its_papers_use() -> None:
    # group 0 holds two topics, image editing (8 papers) and audio synthesis (4): all 12 use
    # "diffusion models", only the larger topic "image editing", which c-TF-IDF scores higher
    edits = ["portraits", "sky", "logos", "faces", "rooms", "cars", "food", "shoes"]
    sounds = ["speech", "music", "birdsong", "drums"]
    texts = (
        [
            f"Image editing of {x} with diffusion models. Image editing keeps {x} intact."
            for x in edits
        ]
        + [f"Audio synthesis of {x} with diffusion models." for x in sounds]
        + [f"Graph neural networks for {x} molecules." for x in edits + sounds]
    )
    groups = np.array([0] * 12 + [1] * 12, dtype=np.int32)
    vectors = np.ones((len(texts), 4), dtype=np.float32)

    def name(coverage: float) -> str:
        labels = topic_labels(count_terms(texts), groups, [0, 1], vectors, coverage=coverage)
        return labels[0].name

    assert name(0.0) == "image editing"  # the most distinctive phrase, of one topic only
    assert name(labels_module.GROUP_COVERAGE) == "diffusion models"
