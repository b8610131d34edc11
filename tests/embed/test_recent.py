"""Kept query vectors are the model's own, in order, and stay within their number."""

from __future__ import annotations

import numpy as np

from service.embed.backends import Embedder
from service.embed.recent import RecentTexts
from tests.helpers import CountingEmbedder


def test_kept_vectors_are_the_models_and_each_text_is_embedded_once(
    embedder: Embedder,
) -> None:
    counted = CountingEmbedder(embedder)
    recent = RecentTexts(counted, kept=3)
    texts = ["graph neural networks", "reward hacking", "graph neural networks", "x" * 10_000]
    first = recent.encode(texts)
    assert counted.seen == texts[:2] + texts[3:]  # a repeat within one call: embedded once
    assert np.allclose(first, embedder.encode(texts), atol=1e-5)
    again = recent.encode(["reward hacking", "graph neural networks"])
    assert counted.seen == texts[:2] + texts[3:]  # both kept
    assert np.array_equal(again, first[[1, 0]])
    again[0] = 0  # a caller's copy: what is kept does not change
    assert np.array_equal(recent.encode(["reward hacking"])[0], first[1])
    recent.encode(["speech recognition"])  # a fourth text: the least recent goes
    recent.encode(["x" * 10_000])
    assert counted.seen[-2:] == ["speech recognition", "x" * 10_000]
    assert recent.encode([]).shape == (0, embedder.dim)
