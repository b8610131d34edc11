"""Local engine vs Ray engine (a local Ray) on the same abstracts; see scripts/ray-embed-bench.

Each run embeds N papers exactly as a build does (``embed_papers`` with the configured windows)
into a fresh store, so every text is embedded. The Ray time includes what a build pays on every
run (the actor pool starting and loading the model); starting Ray itself is reported apart, as
a cluster is normally already running.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from service.build.ray_engine import connect, ray_encoder
from service.config import load_settings
from service.embed.backends import load_embedder
from service.embed.passages import embed_papers, load_windowing
from service.store import Store

ARXIV = Path("../shared/data/arxiv-cs-2025-2026.jsonl.gz")
BUNDLED = Path("service/data/trending-papers.jsonl")


def load_papers(n: int) -> tuple[list[tuple[str, str]], str]:
    """The first N arXiv abstracts, else the bundled ones cycled (titles made unique)."""
    if ARXIV.is_file():
        papers = []
        with gzip.open(ARXIV, "rt", encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                papers.append((row["title"], row["abstract"]))
                if len(papers) == n:
                    return papers, ARXIV.name
    rows = [json.loads(line) for line in BUNDLED.read_text(encoding="utf-8").splitlines()]
    cycled = [(f"{r['title']} ({i})", r["abstract"]) for i, r in enumerate(rows * (n // 115 + 1))]
    return cycled[:n], f"{BUNDLED.name} cycled"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cpus-per-worker", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    settings = load_settings()
    papers, source = load_papers(args.n)
    hashes = [f"paper-{i}" for i in range(len(papers))]
    windowing = load_windowing(settings)
    embedder = load_embedder(settings)
    embedder.encode(["warm-up"])
    started = time.perf_counter()
    connect(num_cpus=args.cpus)
    ray_start = time.perf_counter() - started
    encode = ray_encoder(settings, embedder, cpus_per_worker=args.cpus_per_worker)

    seconds: dict[str, list[float]] = {"local": [], "ray": []}
    vectors: dict[str, np.ndarray] = {}
    texts = 0
    for _ in range(args.repeats):
        for engine in ("local", "ray"):
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
    local, ray = (statistics.median(seconds[e]) for e in ("local", "ray"))
    report = {
        "papers": len(papers),
        "texts_embedded": texts,
        "source": source,
        "backend": embedder.backend,
        "cpus": args.cpus,
        "cpus_per_worker": args.cpus_per_worker,
        "ray_start_seconds": round(ray_start, 2),
        "seconds": seconds,
        "local_papers_per_s": len(papers) / local,
        "ray_papers_per_s": len(papers) / ray,
        "ray_overhead": ray / local - 1,
        "min_cosine_local_vs_ray": float(cosine.min()),
    }
    print(
        f"{len(papers)} papers ({texts} texts with windows) from {source}, backend "
        f"{embedder.backend}, {args.repeats} runs each, Ray on {args.cpus} CPUs, "
        f"{args.cpus_per_worker} CPU per actor; Ray started in {ray_start:.1f} s\n"
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
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
