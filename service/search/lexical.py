"""Lexical retrieval: a BM25 index over title + abstract (bm25s, English Snowball stemming).

Dense vectors miss exact terms (gene names, acronyms, numbers) that a claim shares with its
abstract; BM25 catches them, and fusing both beats either alone (see docs/quality.md). The title
is counted ``title_weight`` times: it is short and dense with the paper's key terms, a cheap
stand-in for BM25F field weights. The index is saved as a folder of ``.npy`` arrays plus a JSON
vocabulary, and loaded memory-mapped so the server does not hold a second copy of the corpus.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.runtime import start_elsewhere
from service.search.fusion import top_rows

PARAMS_FILE = "paperscope.json"
"""Our settings beside bm25s' own files: what a query must be tokenised with."""


@dataclass(frozen=True)
class LexicalParams:
    """How the index is built; recorded with the index and in the build manifest."""

    k1: float = 1.5
    b: float = 0.75
    title_weight: int = 3


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str], stemmer: Any) -> list[list[str]]:
    """Lower-cased word tokens without English stop words, stemmed (bm25s' tokenizer)."""
    import bm25s

    tokens: list[list[str]] = bm25s.tokenize(
        list(texts), stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
    )
    return tokens


def document_text(title: str, abstract: str, title_weight: int) -> str:
    """What is indexed for a paper: the title ``title_weight`` times, then the abstract."""
    return " ".join([title] * title_weight + [abstract])


class LexicalIndex:
    """BM25 over a fixed list of documents; rows are the documents' positions in that list."""

    def __init__(self, retriever: Any, params: LexicalParams, avg_doc_len: float) -> None:
        self._bm25 = retriever
        self._stemmer = _stemmer()
        self.params = params
        self.avg_doc_len = avg_doc_len
        """Mean tokens per indexed document: what BM25 scores new documents' lengths against."""

    @classmethod
    def build(
        cls, papers: Sequence[tuple[str, str]], params: LexicalParams = LexicalParams()
    ) -> LexicalIndex:
        """Index (title, abstract) pairs in order."""
        import bm25s

        texts = [document_text(t, a, params.title_weight) for t, a in papers]
        tokens = tokenize(texts, _stemmer())
        retriever = bm25s.BM25(k1=params.k1, b=params.b)
        retriever.index(tokens, show_progress=False)
        return cls(retriever, params, float(np.mean([len(t) for t in tokens])) if tokens else 0.0)

    @classmethod
    def build_elsewhere(
        cls, papers: Sequence[tuple[str, str]], params: LexicalParams = LexicalParams()
    ) -> Callable[[], LexicalIndex]:
        """Start :meth:`build` in a child process and return the call that waits for it.

        A build's topic fit (seeded UMAP, HDBSCAN) keeps one core busy for a minute or more at
        tens of thousands of papers; the BM25 index needs none of its results, so it is built on
        the other core meanwhile (:mod:`service.runtime`); the child sends back the index's
        arrays."""
        parts = start_elsewhere(_build_parts, list(papers), params)

        def wait() -> LexicalIndex:
            retriever, avg_doc_len = parts()
            return cls(retriever, params, avg_doc_len)

        return wait

    @property
    def size(self) -> int:
        return int(self._bm25.scores["num_docs"])

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._bm25.save(str(folder), show_progress=False)
        recorded = {**self.params.__dict__, "avg_doc_len": self.avg_doc_len}
        (folder / PARAMS_FILE).write_text(json.dumps(recorded), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """Open a saved index with its arrays memory-mapped."""
        import bm25s

        recorded = json.loads((folder / PARAMS_FILE).read_text(encoding="utf-8"))
        avg_doc_len = float(recorded.pop("avg_doc_len", 0.0))
        retriever = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        return cls(retriever, LexicalParams(**recorded), avg_doc_len)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (all zero when no query term is known)."""
        vocab = self._bm25.vocab_dict
        ids = [vocab[t] for t in tokenize([query], self._stemmer)[0] if t in vocab]
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)

    def score_documents(self, query: str, papers: Sequence[tuple[str, str]]) -> np.ndarray:
        """BM25 of ``query`` for documents that are not in the index (papers added live), on
        the index's scale: its document frequencies and mean length, and bm25s' Lucene formula
        (IDF ``ln(1 + (N - df + 0.5) / (df + 0.5))``, term part ``tf / (tf + k1 * norm)``)."""
        out = np.zeros(len(papers), dtype=np.float32)
        vocab = self._bm25.vocab_dict
        terms = tokenize([query], self._stemmer)[0]
        if not terms or not len(papers):
            return out
        indptr = np.asarray(self._bm25.scores["indptr"])
        n = self.size
        k1, b = self.params.k1, self.params.b
        texts = [document_text(t, a, self.params.title_weight) for t, a in papers]
        for i, tokens in enumerate(tokenize(texts, self._stemmer)):
            length_norm = 1 - b + b * len(tokens) / (self.avg_doc_len or len(tokens) or 1)
            counts = {t: tokens.count(t) for t in set(terms)}
            for term in terms:
                tf = counts[term]
                if tf:
                    at = vocab.get(term)  # a term no indexed paper has: df 0
                    df = 0 if at is None else int(indptr[at + 1] - indptr[at])
                    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
                    out[i] += idf * tf / (tf + k1 * length_norm)  # Lucene drops (k1 + 1)
        return out

    def idf(self, words: Sequence[str]) -> dict[str, float]:
        """Each word's inverse document frequency over the indexed papers (stemmed as indexed;
        a word no paper has gets the highest)."""
        indptr = np.asarray(self._bm25.scores["indptr"])
        vocab = self._bm25.vocab_dict
        n = self.size
        out = {}
        for word, stem in zip(words, self._stemmer.stemWords(list(words)), strict=True):
            at = vocab.get(stem)
            df = 0 if at is None else int(indptr[at + 1] - indptr[at])
            out[word] = float(np.log(1 + (n - df + 0.5) / (df + 0.5)))
        return out

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` (row, score) pairs, best first; documents sharing no term are left out."""
        scores = self.scores(query)
        return [(r, float(scores[r])) for r in top_rows(scores, k) if scores[r] > 0]


def _build_parts(papers: list[tuple[str, str]], params: LexicalParams) -> tuple[Any, float]:
    """:meth:`LexicalIndex.build` in a child process: what pickles back (not the stemmer)."""
    index = LexicalIndex.build(papers, params)
    return index._bm25, index.avg_doc_len
