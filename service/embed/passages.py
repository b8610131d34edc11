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

Papers are tokenised once: windows end where a word starts, so a window's text reads as its
slice of the paper's tokens, and the model is given those ids (tokenising 120k windows again
took a single core about 50 s of a 75k-paper build).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from service.config import Settings
from service.embed.backends import ChunkEncoder, Embedder, Vectors, embed_with_cache
from service.embed.models import resolve_model
from service.embed.pooled import ModelInput, TokenIds
from service.errors import InvalidInput
from service.schemas import embedding_text
from service.store import Store

SPECIAL_TOKENS = 2
"""[CLS] and [SEP], added to every window by the model's tokenizer."""
MIN_BODY_TOKENS = 16
"""Abstract tokens per window at least, however long the title."""


@dataclass(frozen=True)
class Windowing:
    """How papers are split: ``tokens`` per window (0 = no split: the text is truncated).

    ``ids_as_text``: the tokenizer reads ``title. part`` as the title's tokens followed by the
    part's (true of BERT's word-piece tokenizer, checked on a probe when loaded), so a window's
    token ids are cut from its paper's tokens instead of tokenising each window again."""

    tokens: int
    stride: int
    tokenizer: Any = None
    ids_as_text: bool = False


NO_WINDOWS = Windowing(0, 0)
"""Embed each paper as one text, cut at the model's window."""


class Window(NamedTuple):
    """One window of a paper: its text (what the cache key hashes), the tokens it reads (its
    weight in the paper's vector) and, where the tokenizer allows, its token ids without the
    special tokens (what the model reads: the text's own tokens)."""

    text: str
    tokens: int
    ids: TokenIds | None

    @property
    def model_input(self) -> ModelInput:
        """What the model is given: the ids where the window has them, else its text."""
        return self.text if self.ids is None else self.ids


PROBE = (
    "Graph neural networks. We study message-passing GNNs (e.g., GCN) on 10^6-node graphs; "
    "state-of-the-art results follow."
)
"""A title and an abstract with punctuation, numbers and split words, to check that a tokenizer
reads a window's text as the window's slice of its paper's tokens."""


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
    windowing = Windowing(settings.embed_window_tokens, settings.embed_window_stride, tokenizer)
    return replace(windowing, ids_as_text=_ids_as_text(tokenizer))


def _ids_as_text(tokenizer: Any) -> bool:
    """Whether :data:`PROBE`'s windows, a few words each, tokenise to their slices."""
    title, abstract = PROBE.split(". ", 1)
    head = len(tokenizer.encode(embedding_text(title, ""), add_special_tokens=False).ids)
    tokens = head + SPECIAL_TOKENS + MIN_BODY_TOKENS
    probe = Windowing(tokens, tokens, tokenizer, ids_as_text=True)
    windows = split_all([(title, abstract)], probe)[0]
    encoded = tokenizer.encode_batch([w.text for w in windows], add_special_tokens=False)
    return len(windows) > 1 and all(
        w.ids is not None and e.ids == w.ids.tolist() for e, w in zip(encoded, windows, strict=True)
    )


def split(title: str, abstract: str, windowing: Windowing) -> list[str]:
    """``title. <part of the abstract>`` for each window, in order."""
    return [window.text for window in split_all([(title, abstract)], windowing)[0]]


def split_all(papers: Sequence[tuple[str, str]], windowing: Windowing) -> list[list[Window]]:
    """Each paper's windows, tokenising papers in large batched calls on every core (this runs
    before the model does): at tens of thousands of papers, tokenising one text at a time costs
    as much as reading every window's vector from the cache.

    Windows end, and so the next one starts, where a word starts (a word longer than a window
    aside), so a window's text reads as the same tokens as its slice of the paper."""
    if not windowing.tokens:
        return [[Window(embedding_text(title, abstract), 0, None)] for title, abstract in papers]
    out: list[list[Window]] = []
    for start in range(0, len(papers), SPLIT_BATCH):
        out.extend(_split_batch(papers[start : start + SPLIT_BATCH], windowing))
    return out


SPLIT_BATCH = 4096
"""Papers tokenised per call: the tokenizer's results for all of 75k papers would hold a
gigabyte at once."""


def _split_batch(papers: Sequence[tuple[str, str]], windowing: Windowing) -> list[list[Window]]:
    tokenizer = windowing.tokenizer
    with _tokenizer_threads():
        heads = tokenizer.encode_batch(
            [embedding_text(title, "") for title, _ in papers], add_special_tokens=False
        )
        bodies = tokenizer.encode_batch([a for _, a in papers], add_special_tokens=False)
    out: list[list[Window]] = []
    for (title, abstract), head, body in zip(papers, heads, bodies, strict=True):
        head_ids = np.asarray(head.ids, dtype=np.int32)
        budget = max(MIN_BODY_TOKENS, windowing.tokens - len(head_ids) - SPECIAL_TOKENS)
        step = min(windowing.stride, budget)
        offsets, words = body.offsets, body.word_ids
        ids = np.asarray(body.ids, dtype=np.int32)  # 4 bytes a token, not a Python int's 28+
        if not offsets:
            text = embedding_text(title, abstract)
            out.append([Window(text, len(head_ids) + SPECIAL_TOKENS, None)])
            continue
        windows, start = [], 0
        while True:
            end = _word_start(words, start, min(start + budget, len(offsets)))
            text = embedding_text(title, abstract[offsets[start][0] : offsets[end - 1][1]])
            # a window that starts inside a word (one longer than a window) is tokenised anew
            whole_words = start == 0 or words[start] != words[start - 1]
            window_ids = (
                np.concatenate([head_ids, ids[start:end]])
                if windowing.ids_as_text and whole_words
                else None
            )
            tokens = len(head_ids) + end - start + SPECIAL_TOKENS
            windows.append(Window(text, tokens, window_ids))
            if end == len(offsets):
                break
            start = end if step >= budget else _word_start(words, start, start + step)
        out.append(windows)
    return out


def _word_start(words: Sequence[int | None], start: int, cut: int) -> int:
    """``cut`` moved back to the first token of its word, unless the word began at or before
    ``start`` (a word longer than a window is cut); the sequence's end stays."""
    if cut >= len(words):
        return len(words)
    moved = cut
    while moved > start + 1 and words[moved] == words[moved - 1]:
        moved -= 1
    return moved if words[moved] != words[moved - 1] else cut


@contextmanager
def _tokenizer_threads() -> Iterator[None]:
    """Let the tokenizer use every core for one batched call (the service turns its threads off
    elsewhere: they would compete with the model's)."""
    before = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = before


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
    flat = [window for paper in windows for window in paper]
    owner = np.repeat(np.arange(len(papers)), [len(paper) for paper in windows])
    texts = [window.text for window in flat]
    vectors, embedded = embed_with_cache(
        store,
        embedder,
        texts,
        [text_hash(text) for text in texts],
        progress,
        encode,
        inputs=[window.model_input for window in flat],
    )
    # each window counts by the tokens it reads, so a short tail weighs what its text weighs
    weights = np.asarray([window.tokens for window in flat], dtype=np.float32)[:, None]
    pooled = np.zeros((len(papers), embedder.dim), dtype=np.float32)
    np.add.at(pooled, owner, vectors * weights)
    pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled, embedded
