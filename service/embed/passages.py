"""Long abstracts as token windows, embedded one by one and mean-pooled.

The model reads at most 256 tokens; the rest of a longer title + abstract would be cut off
unseen (72% of SciFact's papers are longer). Instead each paper is split into windows of at
most ``tokens`` tokens, ``stride`` tokens apart, each starting with the title so it is read in
context; the paper's vector is the normalised mean of its windows' vectors, each weighted by its
tokens (a short tail window weighs what its text weighs), one vector per paper
as before, so the index, topics and map are unchanged. A paper that fits in one window is one
window. Window vectors are cached by the sha256 of their text, like papers.

By default the windows do not overlap (stride = window): each token is read once, so windows
cost about 1.2x a truncated pass on arXiv abstracts rather than 1.8x with half-overlapping
windows, for most of their gain (SciFact hybrid nDCG@10, static int8: 0.7363 truncated, 0.7409
with non-overlapping windows; bf16 with token-weighted windows 0.7421; docs/quality.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.embed.backends import ChunkEncoder, Embedder, Vectors, embed_with_cache
from service.embed.models import resolve_model
from service.errors import InvalidInput
from service.schemas import embedding_text
from service.store import Store

SPECIAL_TOKENS = 2
"""[CLS] and [SEP], added to every window by the model's tokenizer."""
MIN_BODY_TOKENS = 16
"""Abstract tokens per window at least, however long the title."""


@dataclass(frozen=True)
class Windowing:
    """How papers are split: ``tokens`` per window (0 = no split: the text is truncated)."""

    tokens: int
    stride: int
    tokenizer: Any = None


NO_WINDOWS = Windowing(0, 0)
"""Embed each paper as one text, cut at the model's window."""


def load_windowing(settings: Settings) -> Windowing:
    """The configured windows, with the model's own tokenizer (``tokenizer.json``)."""
    if not settings.embed_window_tokens:
        return Windowing(0, 0)
    from tokenizers import Tokenizer

    resolved = resolve_model(settings.model, settings.models_dir)
    path = Path(resolved.location) / "tokenizer.json"
    if not path.is_file():
        raise InvalidInput(
            f"splitting abstracts into windows needs {path}; "
            "set PAPERSCOPE_EMBED_WINDOW_TOKENS=0 to embed truncated abstracts instead"
        )
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return Windowing(settings.embed_window_tokens, settings.embed_window_stride, tokenizer)


def split(title: str, abstract: str, windowing: Windowing) -> list[str]:
    """``title. <part of the abstract>`` for each window, in order."""
    return [text for text, _ in split_all([(title, abstract)], windowing)[0]]


def split_all(
    papers: Sequence[tuple[str, str]], windowing: Windowing
) -> list[list[tuple[str, int]]]:
    """Each paper's windows as (text, tokens it reads), tokenising all papers in two batched
    calls: at tens of thousands of papers, tokenising one text at a time costs as much as
    reading every window's vector from the cache."""
    if not windowing.tokens:
        return [[(embedding_text(title, abstract), 0)] for title, abstract in papers]
    heads = [embedding_text(title, "") for title, _ in papers]
    tokenizer = windowing.tokenizer
    head_counts = [len(e.ids) for e in tokenizer.encode_batch(heads, add_special_tokens=False)]
    bodies = tokenizer.encode_batch([a for _, a in papers], add_special_tokens=False)
    out: list[list[tuple[str, int]]] = []
    for (title, abstract), head_tokens, body in zip(papers, head_counts, bodies, strict=True):
        budget = max(MIN_BODY_TOKENS, windowing.tokens - head_tokens - SPECIAL_TOKENS)
        step = min(windowing.stride, budget)
        offsets = body.offsets
        if not offsets:
            out.append([(embedding_text(title, abstract), head_tokens + SPECIAL_TOKENS)])
            continue
        windows = []
        for start in range(0, len(offsets), step):
            end = min(start + budget, len(offsets))
            text = embedding_text(title, abstract[offsets[start][0] : offsets[end - 1][1]])
            windows.append((text, head_tokens + end - start + SPECIAL_TOKENS))
            if end == len(offsets):
                break
        out.append(windows)
    return out


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def embed_papers(
    store: Store,
    embedder: Embedder,
    papers: Sequence[tuple[str, str]],
    hashes: Sequence[str],
    windowing: Windowing,
    progress: bool = True,
    encode: ChunkEncoder | None = None,
) -> tuple[Vectors, int]:
    """One vector per (title, abstract); returns the matrix and how many texts were embedded.

    Without windows, the whole ``title. abstract`` is embedded (cached under ``hashes``).
    ``encode``: how texts missing from the cache are embedded (see :func:`embed_with_cache`).
    """
    if not windowing.tokens:
        texts = [embedding_text(title, abstract) for title, abstract in papers]
        return embed_with_cache(store, embedder, texts, hashes, progress, encode)
    windows = split_all(papers, windowing)
    flat = [text for paper in windows for text, _ in paper]
    owner = np.repeat(np.arange(len(papers)), [len(paper) for paper in windows])
    vectors, embedded = embed_with_cache(
        store, embedder, flat, [text_hash(w) for w in flat], progress, encode
    )
    # each window counts by the tokens it reads, so a short tail weighs what its text weighs
    tokens = [count for paper in windows for _, count in paper]
    weights = np.asarray(tokens, dtype=np.float32)[:, None]
    pooled = np.zeros((len(papers), embedder.dim), dtype=np.float32)
    np.add.at(pooled, owner, vectors * weights)
    pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled, embedded
