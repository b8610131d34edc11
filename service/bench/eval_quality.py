"""Retrieval quality on SciFact (train): dense vs lexical vs hybrid, and what each lever adds.

``paperscope bench eval-quality [DATASET_DIR] [OUT.md]`` runs the retrieval evaluation of
``paperscope eval retrieval`` once per configuration below (embeddings cached in
PAPERSCOPE_DATA_DIR/eval-cache, so only the first run embeds) and prints one markdown table:
nDCG@10, Recall@100 and MRR@10 per row, the levers named (a) windows, (b) title x3, (c) weighted
fusion; the bold row is the shipped defaults. A closing line gives the dataset size, model,
machine and the seconds each run took.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from service.config import Settings, load_settings
from service.embed.backends import load_embedder
from service.embed.passages import load_windowing
from service.eval.retrieval import EvalReport, evaluate
from service.pipeline.pipeline import lexical_params
from service.search.fusion import fusion_params, parse_modes

TRUNCATED: dict[str, object] = {"embed_window_tokens": 0}
TITLE_ONCE: dict[str, object] = {"bm25_title_weight": 1}
RRF: dict[str, object] = {"fusion": "rrf"}


@dataclass(frozen=True)
class Run:
    overrides: dict[str, object]
    """Settings changed from the defaults (Settings field names)."""
    modes: str
    labels: dict[str, str]
    """Row label of each mode."""
    two_fold: bool = False


RUNS: list[Run] = [
    Run(
        {**TRUNCATED, **TITLE_ONCE, **RRF},
        "dense,lexical,hybrid",
        {
            "dense": "dense, abstract truncated to the model's 256 tokens",
            "lexical": "lexical: BM25 (k1 1.5, b 0.75, stemmed), title counted once",
            "hybrid": "hybrid, plain RRF (k = 60) of the two above",
        },
    ),
    Run(
        {**TRUNCATED, **TITLE_ONCE},
        "hybrid",
        {"hybrid": "(c) hybrid, weighted fusion: min-max scores, dense weight 0.5"},
    ),
    Run(
        TRUNCATED,
        "lexical,hybrid",
        {
            "lexical": "(b) lexical, title counted 3 times",
            "hybrid": "(c) + (b) hybrid, weighted, title x3",
        },
    ),
    Run(
        {},
        "dense,hybrid",
        {
            "dense": "(a) dense, 256-token windows (stride 128) mean-pooled",
            "hybrid": "**(a) + (b) + (c) hybrid: the defaults**",
        },
        two_fold=True,
    ),
    Run(RRF, "hybrid", {"hybrid": "(a) + (b) hybrid with RRF instead of (c)"}),
]


def check_levers() -> None:
    """Every lever names a setting (a renamed one would otherwise be dropped without a word)."""
    unknown = {key for run in RUNS for key in run.overrides} - set(Settings.model_fields)
    if unknown:
        raise AssertionError(f"eval-quality levers name no setting: {sorted(unknown)}")


def evaluate_run(run: Run, dataset: Path, split: str, data_dir: Path) -> EvalReport:
    """One configuration, as ``paperscope eval retrieval`` runs it."""
    settings = load_settings(data_dir=data_dir, **run.overrides)
    return evaluate(
        dataset,
        split,
        parse_modes(run.modes),
        load_embedder(settings),
        settings.eval_cache(),
        lexical_params(settings),
        fusion_params(settings),
        load_windowing(settings),
        tune_weights=(0.3, 0.4, 0.5, 0.6, 0.7) if run.two_fold else (),
    )


def measure(dataset: Path, out: Path | None, split: str = "train") -> str:
    """The table (printed, and written to ``out`` when given)."""
    check_levers()
    data_dir = load_settings().data_dir  # PAPERSCOPE_DATA_DIR, default paperscope-data
    lines = [
        "| configuration | nDCG@10 | Recall@100 | MRR@10 |",
        "|---|---:|---:|---:|",
    ]
    timings: list[float] = []
    report: EvalReport | None = None
    for run in RUNS:
        start = time.perf_counter()
        report = evaluate_run(run, dataset, split, data_dir)
        timings.append(time.perf_counter() - start)
        print(  # what `paperscope eval retrieval` prints for the run
            f"{report.dataset} ({report.split}): {report.queries} queries, {report.documents} "
            f"documents; {report.model} ({report.backend})\n{report.table()}\nseconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items()),
            flush=True,
        )
        for mode, metrics in report.results.items():
            label = run.labels.get(mode, mode)
            lines.append(
                f"| {label} | {metrics['ndcg@10']:.4f} | {metrics['recall@100']:.4f} "
                f"| {metrics['mrr@10']:.4f} |"
            )
    assert report is not None
    lines.append("")
    lines.append(
        f"{report.queries} queries, {report.documents} abstracts; {report.model} "
        f"({report.backend}); {platform.machine()}, {os.cpu_count()} CPUs; eval runs took "
        + ", ".join(f"{t:.0f}" for t in timings)
        + " s (embeddings cached)."
    )
    table = "\n".join(lines)
    print(table)
    if out is not None:
        out.write_text(table + "\n", encoding="utf-8")
    return table
