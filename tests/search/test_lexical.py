"""The BM25 index: stemming, title weight, saving and memory-mapped loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.artifacts import LEXICAL
from service.ingest import BUNDLED_CORPUS
from service.search.lexical import LexicalIndex, LexicalParams

PAPERS = [
    ("Distilling diffusion models", "We compress a sampler into one step."),
    ("Protein folding with transformers", "Attention over residues predicts structures."),
    ("Sparse attention", "Distillation of a large teacher into a small student network."),
    ("Graph neural networks for molecules", "Message passing predicts molecular properties."),
]


def test_search_finds_stemmed_terms_best_first() -> None:
    index = LexicalIndex.build(PAPERS)
    hits = index.search("distillation", 10)
    assert {row for row, _ in hits} == {0, 2}  # "Distilling" and "Distillation" share a stem
    assert [score for _, score in hits] == sorted((s for _, s in hits), reverse=True)
    assert index.search("molecule", 1)[0][0] == 3


def test_unknown_terms_and_stop_words_find_nothing() -> None:
    index = LexicalIndex.build(PAPERS)
    assert index.search("zebra", 10) == []
    assert index.search("the of and", 10) == []
    assert not index.scores("zebra").any()


def test_title_weight_ranks_title_matches_higher() -> None:
    papers = [
        ("Attention", "A method for sequences with long contexts and many tokens."),
        ("Sequences", "A method for attention with long contexts and many tokens."),
    ]
    plain = LexicalIndex.build(papers, LexicalParams(title_weight=1)).scores("attention")
    weighted = LexicalIndex.build(papers, LexicalParams(title_weight=3)).scores("attention")
    assert plain[0] == plain[1]
    assert weighted[0] > weighted[1]


def test_saved_index_loads_memory_mapped_with_the_same_scores(tmp_path: Path) -> None:
    index = LexicalIndex.build(PAPERS, LexicalParams(k1=1.2, b=0.6, title_weight=2))
    index.save(tmp_path / "lexical")
    loaded = LexicalIndex.load(tmp_path / "lexical")
    assert loaded.params == LexicalParams(k1=1.2, b=0.6, title_weight=2)
    assert loaded.size == 4
    assert isinstance(loaded._bm25.scores["data"], np.memmap)
    for query in ("attention structures", "student teacher", "molecular graph"):
        assert np.array_equal(loaded.scores(query), index.scores(query))


def test_index_built_in_a_child_process_scores_as_one_built_here() -> None:
    """What a large build does while its topics are fitted (a spawned process)."""
    params = LexicalParams(k1=1.1, b=0.7, title_weight=2)
    wait = LexicalIndex.build_elsewhere(PAPERS, params)
    here = LexicalIndex.build(PAPERS, params)
    elsewhere = wait()
    assert elsewhere.params == params and elsewhere.size == 4
    assert elsewhere.avg_doc_len == here.avg_doc_len
    for query in ("attention structures", "student teacher", "distilling", "zebra"):
        assert np.array_equal(elsewhere.scores(query), here.scores(query))


def test_build_writes_the_index_into_the_build(built_dir: Path) -> None:
    builds = [p for p in (built_dir / "builds").iterdir() if p.is_dir()]
    lexical = LexicalIndex.load(builds[0] / LEXICAL)
    assert lexical.size == 115
    assert lexical.search("hallucination", 3)


def test_documents_outside_the_index_score_on_its_scale() -> None:
    rows = [json.loads(line) for line in BUNDLED_CORPUS.read_text("utf-8").splitlines()]
    papers = [(r["title"], r["abstract"]) for r in rows]
    without_last = LexicalIndex.build(papers[:-5])
    everything = LexicalIndex.build(papers)
    for query in ("diffusion sampling steps", "knowledge distillation from a teacher"):
        inside = everything.scores(query)[-5:]
        outside = without_last.score_documents(query, papers[-5:])
        assert outside == pytest.approx(inside, rel=0.15, abs=0.05)
    assert not without_last.score_documents("", papers[-5:]).any()


def test_idf_ranks_rare_words_above_common_ones() -> None:
    rows = [json.loads(line) for line in BUNDLED_CORPUS.read_text("utf-8").splitlines()]
    index = LexicalIndex.build([(r["title"], r["abstract"]) for r in rows])
    idf = index.idf(["diffusion", "models", "sinkhorn", "zzzunseen"])
    assert idf["models"] < idf["diffusion"] < idf["sinkhorn"] <= idf["zzzunseen"]
