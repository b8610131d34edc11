"""Label quality metrics on tiny hand-made corpora with values worked out by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.eval.labels import documents_holding, npmi_coherence, topic_diversity

CORPUS = ["alpha beta", "alpha beta", "gamma", "alpha gamma"]


def test_npmi_of_a_pair_matches_the_formula() -> None:
    # P(alpha) = 3/4, P(beta) = 2/4, P(alpha, beta) = 2/4
    expected = math.log(0.5 / (0.75 * 0.5)) / -math.log(0.5)
    assert npmi_coherence([["alpha", "beta"]], CORPUS) == pytest.approx(expected, abs=1e-4)
    assert expected == pytest.approx(0.415, abs=1e-3)


def test_npmi_is_minus_one_for_terms_that_never_meet_and_averages_over_topics() -> None:
    assert npmi_coherence([["beta", "gamma"]], CORPUS) == -1.0
    both = npmi_coherence([["alpha", "beta"], ["beta", "gamma"]], CORPUS)
    assert both == pytest.approx((0.41504 - 1.0) / 2, abs=1e-4)


def test_npmi_is_one_for_terms_in_every_document() -> None:
    assert npmi_coherence([["same", "words"]], ["same words", "words same here"]) == 1.0


def test_only_the_top_terms_count() -> None:
    topic = ["alpha", "beta", "gamma"]
    assert npmi_coherence([topic], CORPUS, top_n=2) == npmi_coherence([["alpha", "beta"]], CORPUS)


def test_phrases_are_held_only_where_their_words_stand_in_a_row() -> None:
    corpus = [
        "Offline reinforcement learning works.",
        "Reinforcement learning, offline.",
        "Large vision-language models",
    ]
    held, n = documents_holding(corpus, {"offline reinforcement learning", "vision", "language"})
    assert n == 3
    assert held["offline reinforcement learning"] == {0}
    assert held["vision"] == {2} and held["language"] == {2}


def test_diversity_is_the_share_of_distinct_terms() -> None:
    assert topic_diversity([["alpha", "beta"], ["beta", "gamma"]]) == 0.75
    assert topic_diversity([["a", "b"], ["c", "d"]]) == 1.0
    assert topic_diversity([["a", "b", "c"], ["a", "b", "d"]], top_n=2) == 0.5
    assert topic_diversity([]) == 0.0


@given(st.lists(st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta"]), max_size=5)))
def test_scores_stay_in_their_ranges(topics: list[list[str]]) -> None:
    assert -1.0 <= npmi_coherence(topics, CORPUS) <= 1.0
    assert 0.0 <= topic_diversity(topics) <= 1.0
