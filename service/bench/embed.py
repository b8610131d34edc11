"""Embedding throughput and agreement of each backend on the same abstracts, repeated runs.

``paperscope bench embed [N_PAPERS] [REPEATS]`` embeds N abstracts of the bundled corpus (cycled
to reach N) with each backend, REPEATS times after a warm-up, and prints one line a backend:
abstracts per second (the median run), that rate against the first backend's (torch by default),
and the cosine similarity of its vectors to the first backend's, mean and minimum (1.0 = the
same vectors; the int8 model is expected to drift a little).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.config import load_settings
from service.embed.backends import Vectors, load_embedder
from service.ingest import BUNDLED_CORPUS
from service.schemas import embedding_text

BACKENDS = ("torch", "onnx", "onnx-int8")


@dataclass(frozen=True)
class BackendRate:
    backend: str
    rate: float
    """Abstracts per second, median of the runs."""
    speedup: float
    """``rate`` over the first backend's."""
    cosine_mean: float
    cosine_min: float


def bundled_texts(n: int) -> list[str]:
    """N embedding texts from the bundled corpus, cycled."""
    lines = BUNDLED_CORPUS.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    cycled = (rows * (n // len(rows) + 1))[:n]
    return [embedding_text(r["title"], r["abstract"]) for r in cycled]


def measure(
    n: int, repeats: int, backends: Sequence[str] = BACKENDS, echo: bool = True
) -> list[BackendRate]:
    """Rates of each backend; with ``echo``, the report lines are printed as they come."""
    texts = bundled_texts(n)
    if echo:
        print(f"{n} abstracts, {repeats} runs each, {os.cpu_count()} cores", flush=True)
    results: list[BackendRate] = []
    reference: Vectors | None = None
    for backend in backends:
        embedder = load_embedder(load_settings(backend=backend))
        embedder.encode(texts[:8])  # warm-up
        times: list[float] = []
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            vectors = embedder.encode(texts)
            times.append(time.perf_counter() - start)
        rate = n / statistics.median(times)
        if reference is None:
            reference = vectors
        cosine = np.sum(reference * vectors, axis=1)
        first = results[0].rate if results else rate
        result = BackendRate(backend, rate, rate / first, float(cosine.mean()), float(cosine.min()))
        results.append(result)
        if echo:
            print(line(result, backends[0]), flush=True)
    return results


def line(result: BackendRate, reference: str = "torch") -> str:
    return (
        f"{result.backend:10} {result.rate:7.1f} abstracts/s  x{result.speedup:.2f} vs "
        f"{reference}  cosine to {reference} mean {result.cosine_mean:.5f} "
        f"min {result.cosine_min:.5f}"
    )
