"""Topic labels: keywords without stop words or repeats, text cleaned of URLs and LaTeX."""

from __future__ import annotations

import numpy as np

from service.topics.labels import clean_for_labels, count_terms, keyword_labels


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
