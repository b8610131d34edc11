"""Embedding throughput and agreement of each backend on the same abstracts, repeated runs.

``paperscope bench embed [N_PAPERS] [REPEATS]`` embeds N abstracts (the bundled corpus cycled, or
the first N of ``--corpus``, a JSON Lines file of papers such as the arXiv set in ``../shared``)
with each backend, REPEATS times after a warm-up, and prints one line a backend: abstracts and
tokens per second (the median run), that rate against the first backend's (torch by default), the
model arithmetic it achieved (GFLOP/s, from the real token counts), and the cosine similarity of its
vectors to the first backend's, mean and minimum (1.0 = the same vectors; int8 drifts a little).

The runs are interleaved (run 1 of every backend, then run 2, ...), so load from other processes
on a shared machine falls on every backend alike and the ratios stay meaningful.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.config import load_settings
from service.embed.backends import Embedder, Vectors, load_embedder
from service.embed.speed import model_flops
from service.embed.speed import token_counts as counted
from service.ingest import BUNDLED_CORPUS
from service.schemas import embedding_text

BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
KNOWN = (*BACKENDS, "auto")


@dataclass(frozen=True)
class BackendRate:
    backend: str
    rate: float
    """Abstracts per second, median of the runs."""
    speedup: float
    """``rate`` over the first backend's."""
    cosine_mean: float
    cosine_min: float
    gflops: float = 0.0
    """Model arithmetic per second (multiply-adds count two), at the median run."""
    tokens: float = 0.0
    """Tokens per second, at the median run."""


def bundled_texts(n: int) -> list[str]:
    """N embedding texts from the bundled corpus, cycled."""
    lines = BUNDLED_CORPUS.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    cycled = (rows * (n // len(rows) + 1))[:n]
    return [embedding_text(r["title"], r["abstract"]) for r in cycled]


def corpus_texts(path: Path, n: int) -> list[str]:
    """The first N papers of a JSON Lines file (``.gz`` too) as embedding texts."""
    opener = gzip.open if path.suffix == ".gz" else open
    texts: list[str] = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                texts.append(embedding_text(row.get("title", ""), row.get("abstract", "")))
                if len(texts) == n:
                    break
    return texts


def token_counts(texts: Sequence[str], max_tokens: int) -> list[int]:
    """Tokens each text is embedded with (the model's tokenizer, truncated as embedding does)."""
    from service.embed.models import resolve_model

    settings = load_settings()
    resolved = resolve_model(settings.model, settings.models_dir)
    return counted(Path(resolved.location), texts, max_tokens)


def measure(
    n: int,
    repeats: int,
    backends: Sequence[str] = BACKENDS,
    echo: bool = True,
    corpus: Path | None = None,
) -> list[BackendRate]:
    """Rates of each backend; with ``echo``, the report lines are printed at the end."""
    texts = corpus_texts(corpus, n) if corpus is not None else bundled_texts(n)
    settings = load_settings()
    counts = token_counts(texts, settings.embed_max_tokens)
    flops, tokens = model_flops(counts), sum(counts)
    if echo:
        source = corpus.name if corpus is not None else "the bundled corpus"
        print(
            f"{len(texts)} abstracts from {source}, {repeats} interleaved runs each, "
            f"{os.cpu_count()} cores, {flops / len(texts) / 1e9:.2f} GFLOP per abstract",
            flush=True,
        )
    embedders: list[Embedder] = []
    for backend in backends:
        embedder = load_embedder(load_settings(backend=backend))
        embedder.encode(texts[:8])  # warm-up
        embedders.append(embedder)
    times: list[list[float]] = [[] for _ in backends]
    vectors: list[Vectors] = [np.zeros(0, dtype=np.float32)] * len(backends)
    for _ in range(max(1, repeats)):
        for i, embedder in enumerate(embedders):
            start = time.perf_counter()
            vectors[i] = embedder.encode(texts)
            times[i].append(time.perf_counter() - start)
    results: list[BackendRate] = []
    for i, backend in enumerate(backends):
        seconds = statistics.median(times[i])
        rate = len(texts) / seconds
        cosine = np.sum(vectors[0] * vectors[i], axis=1)
        first = results[0].rate if results else rate
        name = backend if backend != "auto" else f"default ({embedders[i].backend})"
        results.append(
            BackendRate(
                name,
                rate,
                rate / first,
                float(cosine.mean()),
                float(cosine.min()),
                flops / seconds / 1e9,
                tokens / seconds,
            )
        )
    if echo:
        for result in results:
            print(line(result, results[0].backend), flush=True)
    return results


def line(result: BackendRate, reference: str = "torch") -> str:
    return (
        f"{result.backend:10} {result.rate:7.1f} abstracts/s {result.tokens:7.0f} tokens/s  "
        f"x{result.speedup:.2f} vs {reference}  {result.gflops:6.1f} GFLOP/s  "
        f"cosine to {reference} mean {result.cosine_mean:.5f} min {result.cosine_min:.5f}"
    )
