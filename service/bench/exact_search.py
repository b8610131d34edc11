"""``paperscope bench exact-search``: FAISS exact search with OpenBLAS's own kernel choice
against the one :mod:`service.runtime` makes, in one run.

Each side runs in its own fresh process (OpenBLAS picks its kernels when it loads): one imports
faiss alone, with ``OPENBLAS_CORETYPE`` unset; the other imports ``service`` first, as every
paperscope process does. Both search the same seeded random unit vectors; the table gives the
median seconds, the kernel name faiss's OpenBLAS reports, and the ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

PROBE = """
import json, sys, time
if sys.argv[1] == "paperscope":
    import service  # noqa: F401  (sets OPENBLAS_CORETYPE where it helps)
import faiss
import numpy as np
from threadpoolctl import threadpool_info

rows, queries, runs = (int(a) for a in sys.argv[2:5])
vectors = np.random.default_rng(0).standard_normal((rows, 384)).astype(np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
index = faiss.IndexFlatIP(384)
index.add(vectors)
seconds = []
for _ in range(runs):
    start = time.perf_counter()
    index.search(vectors[:queries], 15)
    seconds.append(time.perf_counter() - start)
kernels = [
    str(lib.get("architecture"))
    for lib in threadpool_info()
    if lib.get("internal_api") == "openblas" and "faiss" in str(lib.get("filepath", ""))
]
print(json.dumps({"seconds": seconds, "kernel": kernels[0] if kernels else "not OpenBLAS"}))
"""


def probe(side: str, rows: int, queries: int, runs: int) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, side, str(rows), str(queries), str(runs)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(rows: int, queries: int, runs: int) -> None:
    print(f"exact search: {queries:,} queries over {rows:,} vectors (384-d, k=15), {runs} runs")
    print("| OpenBLAS kernels | kernel faiss runs | median s | × |")
    print("|---|---|---:|---:|")
    own = probe("openblas", rows, queries, runs)
    chosen = probe("paperscope", rows, queries, runs)
    base = statistics.median(own["seconds"])  # type: ignore[arg-type]
    for label, result in (
        ("OpenBLAS's own choice", own),
        ("paperscope's (service.runtime)", chosen),
    ):
        median = statistics.median(result["seconds"])  # type: ignore[arg-type]
        print(f"| {label} | {result['kernel']} | {median:.3f} | {base / median:.2f} |")
