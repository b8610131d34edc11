"""Embedding throughput of the local engine against a local Ray (the ray engine on one node).

``paperscope bench ray-embed [--n 1000] [--repeats 3] [--cpus N] [--cpus-per-worker 1]
[--json OUT]`` embeds the same N abstracts exactly as a build does (``embed_papers`` with the
configured windows) into a fresh store each run, so every text is embedded, the two engines
alternating, REPEATS times each. Abstracts: the first N of --corpus (default
../shared/data/arxiv-cs-2025-2026.jsonl.gz beside the checkout), else the bundled ones cycled.

The Ray time includes what a build pays on every run (the actor pool starting and loading the
model); starting Ray itself is reported apart, as a cluster is normally already running. Output:
a markdown table, one row per engine: median seconds (and every run), papers/s, speed against
local; then Ray's overhead and the smallest cosine similarity between the two engines' vectors
(1.0: the same vectors). PAPERSCOPE_BACKEND etc. choose the model as for a build.
"""

from __future__ import annotations

import gzip
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from service.bench.common import SHARED
from service.config import load_settings
from service.embed.backends import Vectors, load_embedder
from service.embed.passages import embed_papers, load_windowing
from service.ingest import BUNDLED_CORPUS
from service.pipeline.ray_engine import connect, ray_encoder
from service.store import Store

ARXIV = SHARED / "data" / "arxiv-cs-2025-2026.jsonl.gz"
ENGINES = ("local", "ray")


def load_papers(n: int, corpus: Path = ARXIV) -> tuple[list[tuple[str, str]], str]:
    """The first N abstracts of ``corpus`` (JSON lines, gzipped or not) when it holds that many,
    else the bundled ones cycled (titles made unique)."""
    if corpus.is_file():
        papers: list[tuple[str, str]] = []
        with (
            gzip.open(corpus, "rt", encoding="utf-8")
            if corpus.suffix == ".gz"
            else corpus.open(encoding="utf-8")
        ) as handle:
            for line in handle:
                row = json.loads(line)
                papers.append((row["title"], row["abstract"]))
                if len(papers) == n:
                    return papers, corpus.name
    lines = BUNDLED_CORPUS.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    cycled = [
        (f"{r['title']} ({i})", r["abstract"]) for i, r in enumerate(rows * (n // len(rows) + 1))
    ]
    return cycled[:n], f"{BUNDLED_CORPUS.name} cycled"


def measure(
    n: int,
    repeats: int,
    cpus: int,
    cpus_per_worker: int,
    json_out: Path | None = None,
    corpus: Path = ARXIV,
) -> dict[str, object]:
    """The report (also written to ``json_out`` when given)."""
    logging.getLogger().setLevel(logging.WARNING)
    settings = load_settings()
    papers, source = load_papers(n, corpus)
    hashes = [f"paper-{i}" for i in range(len(papers))]
    windowing = load_windowing(settings)
    embedder = load_embedder(settings)
    embedder.encode(["warm-up"])
    started = time.perf_counter()
    connect(num_cpus=cpus)
    ray_start = time.perf_counter() - started
    encode = ray_encoder(settings, embedder, cpus_per_worker=cpus_per_worker)

    seconds: dict[str, list[float]] = {engine: [] for engine in ENGINES}
    vectors: dict[str, Vectors] = {}
    texts = 0
    for _ in range(repeats):
        for engine in ENGINES:
            with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "p.sqlite") as store:
                start = time.perf_counter()
                vectors[engine], texts = embed_papers(
                    store,
                    embedder,
                    papers,
                    hashes,
                    windowing,
                    progress=False,
                    encode=encode if engine == "ray" else None,
                )
                seconds[engine].append(time.perf_counter() - start)
    cosine = np.sum(vectors["local"] * vectors["ray"], axis=1)
    local, ray = (statistics.median(seconds[e]) for e in ENGINES)
    report: dict[str, object] = {
        "papers": len(papers),
        "texts_embedded": texts,
        "source": source,
        "backend": embedder.backend,
        "cpus": cpus,
        "cpus_per_worker": cpus_per_worker,
        "ray_start_seconds": round(ray_start, 2),
        "seconds": seconds,
        "local_papers_per_s": len(papers) / local,
        "ray_papers_per_s": len(papers) / ray,
        "ray_overhead": ray / local - 1,
        "min_cosine_local_vs_ray": float(cosine.min()),
    }
    print(
        f"{len(papers)} papers ({texts} texts with windows) from {source}, backend "
        f"{embedder.backend}, {repeats} runs each, Ray on {cpus} CPUs, "
        f"{cpus_per_worker} CPU per actor; Ray started in {ray_start:.1f} s\n"
    )
    print("| engine | seconds (median; runs) | papers/s | vs local |")
    print("|---|---:|---:|---:|")
    for engine, median in (("local", local), ("ray", ray)):
        runs = ", ".join(f"{s:.1f}" for s in seconds[engine])
        print(
            f"| {engine} | {median:.1f} ({runs}) | {len(papers) / median:.1f} | "
            f"{local / median:.2f}x |"
        )
    print(f"\nRay overhead {ray / local - 1:+.1%}; min cosine local vs Ray {cosine.min():.6f}")
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report
