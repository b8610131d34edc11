"""Retrieval metrics against hand-computed values, BEIR loading, and the eval command."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from service.embed.backends import Embedder
from service.embed.passages import load_windowing
from service.errors import InvalidInput
from service.eval.retrieval import (
    evaluate,
    load_beir,
    mrr_at,
    ndcg_at,
    recall_at,
    score_runs,
)
from service.search.fusion import FusionParams
from service.search.lexical import LexicalParams
from service.store import Store
from tests.helpers import FIXTURES, run, settings_without_env

BEIR = FIXTURES / "beir-tiny"


def test_metrics_match_hand_computed_values() -> None:
    ranking = ["a", "b", "c", "d"]
    relevant = {"b": 2, "d": 1, "e": 1, "x": 0}
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    ideal = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at(ranking, relevant, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at(ranking, relevant, 10) == pytest.approx(0.5406, abs=1e-4)
    assert ndcg_at(ranking, relevant, 1) == 0.0
    assert ndcg_at(["b", "d", "e"], relevant, 10) == pytest.approx(1.0)
    assert recall_at(ranking, relevant, 100) == pytest.approx(2 / 3)
    assert recall_at(ranking, relevant, 2) == pytest.approx(1 / 3)
    assert mrr_at(ranking, relevant, 10) == 0.5
    assert mrr_at(ranking, relevant, 1) == 0.0


def test_score_runs_averages_judged_queries_and_counts_missing_runs_as_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    scores = score_runs({"q1": ["a"], "q3": ["c"]}, qrels)
    assert scores == {"ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5}


def test_load_beir_reads_both_layouts(tmp_path: Path) -> None:
    nested = load_beir(BEIR, "test")
    assert len(nested.ids) == 8 and nested.titles[0].startswith("Aspirin")
    assert set(nested.queries) == {"q1", "q2", "q3", "q4"}  # q5 has no qrels
    assert nested.qrels["q1"] == {"d1": 2, "d8": 1}
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(BEIR / "corpus.jsonl", flat / "corpus.jsonl")
    shutil.copy(BEIR / "queries.jsonl", flat / "queries-train.jsonl")
    shutil.copy(BEIR / "qrels" / "test.tsv", flat / "qrels-train.tsv")
    assert load_beir(flat, "train").qrels == nested.qrels


def test_load_beir_refuses_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        load_beir(tmp_path / "missing")
    shutil.copytree(BEIR, tmp_path / "data")
    with pytest.raises(InvalidInput, match=r"qrels-train\.tsv"):
        load_beir(tmp_path / "data", "train")
    (tmp_path / "data" / "qrels" / "test.tsv").write_text("q1\td1\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="expected query-id"):
        load_beir(tmp_path / "data", "test")


def test_evaluate_scores_every_mode_and_caches_embeddings(
    tmp_path: Path, embedder: Embedder
) -> None:
    cache = tmp_path / "cache" / "embeddings.sqlite"
    windowing = load_windowing(settings_without_env())
    args = (embedder, cache, LexicalParams(), FusionParams(), windowing)
    report = evaluate(BEIR, "test", ["dense", "lexical", "hybrid"], *args)
    assert set(report.results) == {"dense", "lexical", "hybrid"}
    for metrics in report.results.values():
        assert set(metrics) == {"ndcg@10", "recall@100", "mrr@10"}
        assert all(0.0 <= value <= 1.0 for value in metrics.values())
    # Each query shares its key terms with its relevant abstract: every mode finds them.
    assert report.results["lexical"]["mrr@10"] == 1.0
    assert report.results["hybrid"]["mrr@10"] == 1.0
    assert report.results["hybrid"]["recall@100"] == 1.0
    with Store(cache) as store:
        cached = store._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    assert cached == 8 + 4  # documents + judged queries
    assert "| hybrid |" in report.table()


def test_eval_command_writes_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = run(
        "eval",
        "retrieval",
        BEIR,
        "--split",
        "test",
        "--modes",
        "lexical,dense",
        "--json",
        out,
        data_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "| lexical |" in result.stdout and "| dense |" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert list(report["results"]) == ["lexical", "dense"]
    assert report["queries"] == 4
    assert (tmp_path / "eval-cache" / "embeddings.sqlite").is_file()


def test_eval_command_refuses_bad_input(tmp_path: Path) -> None:
    bad_mode = run("eval", "retrieval", BEIR, "--modes", "fuzzy", data_dir=tmp_path)
    assert bad_mode.returncode == 2 and "mode must be one of" in bad_mode.stderr
    no_split = run("eval", "retrieval", BEIR, "--split", "dev", data_dir=tmp_path)
    assert no_split.returncode == 2 and "qrels/dev.tsv" in no_split.stderr
    assert "Traceback" not in bad_mode.stderr + no_split.stderr
