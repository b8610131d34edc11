"""Topic quality against labels: metrics, noise handling, and the side-by-side with BERTopic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.embed.backends import Embedder
from service.embed.passages import load_windowing
from service.errors import InvalidInput
from service.eval.clustering import (
    ClusterReport,
    evaluate_clustering,
    name_counts,
    read_labelled,
    reassign_noise,
    score_method,
)
from tests.helpers import FIXTURES, make_settings

LABELLED = FIXTURES / "labelled-arxiv.jsonl"
"""60 real arXiv papers, 20 each from cs.CV, cs.CL and cs.RO."""


def test_perfect_and_noisy_topics_score_as_expected() -> None:
    labels = ["a", "a", "b", "b", "c", "c"]
    vectors = np.eye(6, 3, dtype=np.float32)[[0, 0, 1, 1, 2, 2]]
    perfect = score_method("x", labels, vectors, np.array([0, 0, 1, 1, 2, 2]), 1.0)
    assert perfect.all.nmi == perfect.all.ari == perfect.all.v_measure == 1.0
    assert (perfect.topics, perfect.noise_share) == (3, 0.0)
    noisy = score_method("x", labels, vectors, np.array([0, -1, 1, 1, -1, 2]), 1.0)
    assert noisy.noise_share == pytest.approx(1 / 3, abs=1e-3)
    assert noisy.clustered.nmi == 1.0  # the clustered papers are all right
    assert noisy.all.nmi < 1.0
    assert noisy.reassigned.nmi == 1.0  # each noise paper goes to the topic of its twin


def test_reassigning_noise_uses_the_nearest_centroid() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    topics = np.array([0, -1, 1, -1])
    assert reassign_noise(vectors, topics).tolist() == [0, 0, 1, 1]
    assert reassign_noise(vectors, np.array([-1, -1, -1, -1])).tolist() == [-1, -1, -1, -1]


def test_labelled_files_are_read_and_checked(tmp_path: Path) -> None:
    papers, labels = read_labelled(LABELLED, "primary_category", limit=10)
    assert len(papers) == len(labels) == 10
    with pytest.raises(InvalidInput, match="no record"):
        read_labelled(LABELLED, "no_such_field", None)
    with pytest.raises(InvalidInput, match="not found"):
        read_labelled(tmp_path / "missing.jsonl", "label", None)


@pytest.mark.slow
def test_topics_recover_the_categories_beside_bertopic(tmp_path: Path, embedder: Embedder) -> None:
    settings = make_settings(tmp_path)
    report = evaluate_clustering(
        LABELLED,
        "primary_category",
        embedder,
        tmp_path / "cache.sqlite",
        load_windowing(settings),
        settings,
        noise_stability=True,
    )
    assert (report.papers, report.labels) == (60, 3)
    ours = report.methods[0]
    assert ours.method.startswith("paperscope") and ours.topics >= 2
    assert ours.reassigned.nmi > 0.3  # chance level is near 0
    raw = report.methods[1]
    assert raw.method.startswith("paperscope raw HDBSCAN")
    assert raw.noise_share == ours.outlier_share  # the same fit, outliers left unclustered
    assert ours.noise_share <= 0.1  # served: outliers assigned
    by_name = {m.method: m for m in report.methods}
    # the dev extra installs every peer: each is a row, with its own fit time
    evoc = by_name["EVoC defaults, noise to 10-NN majority"]
    assert evoc.noise_share == 0.0 and evoc.topics >= 1
    assert by_name["Turftopic Topeax defaults"].topics >= 1
    assert by_name[f"k-means, k = {ours.topics} (ours)"].topics == ours.topics
    assert not report.notes
    assert "BERTopic defaults" in by_name
    bertopic = [m for m in report.methods if m.method.startswith("BERTopic")]
    if len(bertopic) == 2:
        assert bertopic[1].noise_share == 0.0
        assert bertopic[1].fit_seconds >= bertopic[0].fit_seconds
    table = report.table()
    assert "| paperscope" in table and "| BERTopic defaults |" in table
    assert "| NPMI | diversity |" in table
    assert ours.names is not None and (ours.names.duplicates, ours.names.near_duplicates) == (0, 0)
    assert ours.names.like_group == 0
    for method in report.methods:  # label quality is scored for ours and every peer's
        assert method.npmi is not None and -1 <= method.npmi <= 1
        assert method.diversity is not None and 0 < method.diversity <= 1
        assert method.names is not None and method.names.duplicates >= 0
    # every method was fitted again on the vectors with bf16-level noise, in the same run
    for method in report.methods:
        assert method.noise_ari is not None and -1 <= method.noise_ari <= 1, method.method
    assert "| ARI under bf16 noise |" in table
    json.dumps([m.__dict__ for m in report.methods], default=lambda o: o.__dict__)


def test_large_corpora_are_evaluated_as_a_build_fits_them(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path, topic_sample_above=50, topic_sample_size=40)
    report = evaluate_clustering(
        LABELLED,
        "primary_category",
        embedder,
        tmp_path / "cache.sqlite",
        load_windowing(settings),
        settings,
        with_bertopic=False,
        with_peers=False,
    )
    ours, raw = report.methods[:2]
    assert all(m.method.startswith("paperscope coarse") for m in report.methods[2:])
    assert "fitted on 40 papers" in ours.method
    assert ours.noise_share <= raw.noise_share
    assert ours.outlier_share == raw.noise_share
    assert ours.all.nmi > 0.3  # the 20 assigned papers land with their own kind
    assert ours.npmi is not None and ours.diversity is not None


def test_rows_of_two_fits_are_matched_by_their_method() -> None:
    from service.eval.clustering import _kind

    assert _kind("paperscope (leaf, min_cluster_size 7) fine") == _kind(
        "paperscope (fitted on 20,000 papers, the rest assigned) fine"
    )
    assert _kind("k-means, k = 37 (ours)") == _kind("k-means, k = 39 (ours)")
    kinds = {
        _kind(m)
        for m in (
            "paperscope (leaf, min_cluster_size 7) fine",
            "paperscope raw HDBSCAN (same fit)",
            "paperscope coarse groups",
            "k-means, k = 37 (ours)",
            "k-means, k = 8 (our coarse level)",
            "EVoC defaults, noise to 10-NN majority",
            "Turftopic Topeax defaults",
            "BERTopic defaults",
            'BERTopic + reduce_outliers("embeddings")',
        )
    }
    assert len(kinds) == 9


def test_name_counts_find_repeats_near_repeats_and_names_like_the_group() -> None:
    topics = ["dark matter", "dark matter", "cosmology", "cosmological", "galaxy clusters"]
    groups = [("cosmology", ["cosmological", "galaxy clusters"]), ("dark matter", ["dark matter"])]
    counts = name_counts(topics, groups)
    assert (counts.duplicates, counts.near_duplicates) == (1, 1)
    assert (counts.like_group, counts.single_word) == (2, 2)
    report = score_method("x", ["a", "b"], np.eye(2, dtype=np.float32), np.array([0, 1]), 1.0)
    report.names = counts
    table = ClusterReport("f", "label", 2, 2, "m", [report]).table()
    assert "| named like group |" in table and "| 1 | 1 | 2 | 2 |" in table
