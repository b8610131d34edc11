"""Kept query vectors are the model's own, in order, and stay within their number."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.embed.backends import Embedder, Vectors
from service.embed.recent import RecentTexts


class Counted:
    """The real model, counting the texts it is asked to embed."""

    def __init__(self, embedder: Embedder) -> None:
        self.inner = embedder
        self.name, self.revision = embedder.name, embedder.revision
        self.dim, self.backend = embedder.dim, embedder.backend
        self.texts: list[str] = []

    @property
    def cache_key(self) -> str:
        return self.inner.cache_key

    def encode(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        self.texts.extend(texts)
        return self.inner.encode(texts)


def test_kept_vectors_are_the_models_and_each_text_is_embedded_once(
    embedder: Embedder,
) -> None:
    counted = Counted(embedder)
    recent = RecentTexts(counted, kept=3)
    texts = ["graph neural networks", "reward hacking", "graph neural networks", "x" * 10_000]
    first = recent.encode(texts)
    assert counted.texts == texts[:2] + texts[3:]  # a repeat within one call: embedded once
    assert np.allclose(first, embedder.encode(texts), atol=1e-5)
    again = recent.encode(["reward hacking", "graph neural networks"])
    assert counted.texts == texts[:2] + texts[3:]  # both kept
    assert np.array_equal(again, first[[1, 0]])
    again[0] = 0  # a caller's copy: what is kept does not change
    assert np.array_equal(recent.encode(["reward hacking"])[0], first[1])
    recent.encode(["speech recognition"])  # a fourth text: the least recent goes
    recent.encode(["x" * 10_000])
    assert counted.texts[-2:] == ["speech recognition", "x" * 10_000]
    assert recent.encode([]).shape == (0, embedder.dim)
