"""Names a reader can tell apart: the near-duplicate predicate and the noun-phrase heuristic,
with the examples issue #25 found on real maps."""

from __future__ import annotations

import pytest

from service.topics.naming import duplicate_counts, is_noun_phrase, near_duplicate


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("large language models", "large language models"),
        ("large language models", "language model"),
        ("pre-trained diffusion", "pre-trained diffusion models"),
        ("generative", "generative ai"),
        ("cosmology", "cosmological"),
        ("astronomy", "astronomical"),
        ("inflationary", "inflation"),
        ("dark matter", "Dark Matter"),
        ("cosmic rays", "cosmic ray"),
        ("gravitational wave", "gravitational-wave detectors"),
        ("gravitational waves", "gravitational wave"),
        ("deep learning", "deep reinforcement learning"),
        ("remote sensing", "sensing remote"),
    ],
)
def test_near_duplicates_from_real_maps(a: str, b: str) -> None:
    assert near_duplicate(a, b) and near_duplicate(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("dark matter halos", "dark matter detection"),
        ("video reasoning", "video generation"),
        ("graph neural networks", "computer graphics"),
        ("linear codes", "code generation"),
        ("cosmic rays", "galaxy clusters"),
        ("topic 3", "topic 30"),
    ],
)
def test_distinct_names_are_not_near_duplicates(a: str, b: str) -> None:
    assert not near_duplicate(a, b) and not near_duplicate(b, a)


@pytest.mark.parametrize(
    "name",
    [
        "inflationary",
        "cosmic",
        "astronomical",
        "extragalactic",
        "interstellar",
        "deep neural",
        "pre-trained",
        "conversational",
        "adversarial",
        "generative",
        "federated",
        "deep",
        "cardiac",
    ],
)
def test_adjectives_are_no_names(name: str) -> None:
    assert not is_noun_phrase(name)


@pytest.mark.parametrize(
    "name",
    [
        "gravitational waves",
        "dark matter",
        "retrieval",
        "signal processing",
        "generative ai",
        "robotics",
        "evaluation",
        "speech recognition",
        "multi-agent",
        "knowledge graph",
    ],
)
def test_noun_phrases_are_names(name: str) -> None:
    assert is_noun_phrase(name)


def test_duplicate_counts() -> None:
    names = ["dark matter", "dark matter", "cosmology", "cosmological", "galaxy clusters"]
    assert duplicate_counts(names) == (1, 1, 2)
    assert duplicate_counts([]) == (0, 0, 0)
