"""Run `paperscope eval retrieval` per lever; print one markdown table (scripts/eval-quality)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRUNCATED = {"PAPERSCOPE_EMBED_WINDOW_TOKENS": "0"}
TITLE_ONCE = {"PAPERSCOPE_BM25_TITLE_WEIGHT": "1"}
RRF = {"PAPERSCOPE_FUSION": "rrf"}

# (environment, modes, extra flags, {mode: row label})
RUNS: list[tuple[dict[str, str], str, list[str], dict[str, str]]] = [
    (
        {**TRUNCATED, **TITLE_ONCE, **RRF},
        "dense,lexical,hybrid",
        [],
        {
            "dense": "dense, abstract truncated to the model's 256 tokens",
            "lexical": "lexical: BM25 (k1 1.5, b 0.75, stemmed), title counted once",
            "hybrid": "hybrid, plain RRF (k = 60) of the two above",
        },
    ),
    (
        {**TRUNCATED, **TITLE_ONCE},
        "hybrid",
        [],
        {"hybrid": "(c) hybrid, weighted fusion: min-max scores, dense weight 0.5"},
    ),
    (
        TRUNCATED,
        "lexical,hybrid",
        [],
        {
            "lexical": "(b) lexical, title counted 3 times",
            "hybrid": "(c) + (b) hybrid, weighted, title x3",
        },
    ),
    (
        {},
        "dense,hybrid",
        ["--two-fold"],
        {
            "dense": "(a) dense, 256-token windows (stride 128) mean-pooled",
            "hybrid": "**(a) + (b) + (c) hybrid: the defaults**",
        },
    ),
    (RRF, "hybrid", [], {"hybrid": "(a) + (b) hybrid with RRF instead of (c)"}),
]


def main() -> None:
    dataset = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/scifact")
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    data_dir = Path(os.environ.get("PAPERSCOPE_DATA_DIR", "paperscope-data"))
    lines = [
        "| configuration | nDCG@10 | Recall@100 | MRR@10 |",
        "|---|---:|---:|---:|",
    ]
    timings = []
    for env, modes, flags, labels in RUNS:
        with tempfile.NamedTemporaryFile(suffix=".json") as report_file:
            command = [
                sys.executable, "-m", "service", "eval", "retrieval", str(dataset),
                "--split", "train", "--modes", modes, "--json", report_file.name,
                "--data-dir", str(data_dir), *flags,
            ]  # fmt: skip
            start = time.perf_counter()
            subprocess.run(command, check=True, env={**os.environ, **env})
            timings.append(time.perf_counter() - start)
            report = json.loads(Path(report_file.name).read_text(encoding="utf-8"))
        for mode, metrics in report["results"].items():
            label = labels.get(mode, mode)
            lines.append(
                f"| {label} | {metrics['ndcg@10']:.4f} | {metrics['recall@100']:.4f} "
                f"| {metrics['mrr@10']:.4f} |"
            )
    cpus = os.cpu_count()
    lines.append("")
    lines.append(
        f"{report['queries']} queries, {report['documents']} abstracts; {report['model']} "
        f"({report['backend']}); {platform.machine()}, {cpus} CPUs; eval runs took "
        + ", ".join(f"{t:.0f}" for t in timings)
        + " s (embeddings cached)."
    )
    table = "\n".join(lines)
    print(table)
    if out is not None:
        out.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
