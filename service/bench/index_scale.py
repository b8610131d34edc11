"""FAISS index layouts at scale on N synthetic 384-d vectors.

``paperscope bench index-scale N [LAYOUTS]`` builds each layout with service.search.index (the
code a build runs): trained on a sample, filled chunk by chunk, nprobe (efSearch for HNSW)
raised until recall@10 against exact search on 1,000 held-out queries reaches the target.
Queries/s and memory are measured in a fresh process that only loads the index file and answers
the queries one at a time on one thread (the serving path), so neither the build nor the ground
truth counts.

Vectors are clustered (a seeded Gaussian mixture on the unit sphere, like real embeddings) and
generated in chunks, never all in memory; ground truth is computed by streaming them. Layouts:
``auto`` (what a build with default settings picks for N), ``hnsw``, ``ivf-flat``, ``ivf-sq8``,
``ivf-sq8-flatq`` (flat coarse quantizer), ``ivf-pq`` (with exact rerank from a vectors file).

Output: one markdown row per layout: build seconds, the breadth reached, recall@10, queries/s
on one thread, index file MB, the RSS the index adds to the serving process, that process's
RSS (private + file-backed), and this process's peak RSS while building. Scratch files (the
index, queries, the vectors file of reranking layouts) go to --results (/tmp/index-results).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from service.bench.common import child_env
from service.config import Settings
from service.search.index import (
    COMPRESSED_TARGET_RECALL,
    TARGET_RECALL,
    TRAIN_MAX,
    TRAIN_PER_LIST,
    Layout,
    choose_layout,
    exact_top10,
    ivf_lists,
    layout_of,
    pq_bytes,
    recall,
    search,
    set_breadth,
    train_and_fill,
    tune_breadth,
)

DIM = 384
CHUNK = 100_000
QUERIES = 1_000
CENTRES = 2_000
LATENT = 48
"""Intrinsic dimension: real sentence embeddings vary along far fewer directions than 384."""
RESULTS = Path("/tmp/index-results")  # noqa: S108 (a fixed place so results outlive a crash)
KINDS = ("auto", "hnsw", "ivf-flat", "ivf-sq8", "ivf-sq8-flatq", "ivf-pq")
HEADER = (
    "| index | build s | nprobe / efSearch | recall@10 | q/s 1 thread | index file MB "
    "| index RSS GB | serving process RSS GB (private + file-backed) "
    "| build process peak RSS GB |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)
Array = npt.NDArray[np.float32]


def chunks(n: int, seed: int = 0, stream: int = 1) -> Iterator[Array]:
    """N unit vectors: CENTRES cluster centres in a LATENT-dim subspace plus spread within it and
    a little full-dimensional noise, chunk by chunk, reproducibly."""
    setup = np.random.default_rng(seed)
    basis = np.linalg.qr(setup.standard_normal((DIM, LATENT)))[0].T.astype(np.float32)
    centres = setup.standard_normal((CENTRES, LATENT)).astype(np.float32)
    for start in range(0, n, CHUNK):
        rng = np.random.default_rng([seed, stream, start // CHUNK])
        size = min(CHUNK, n - start)
        latent = centres[rng.integers(0, CENTRES, size)] + 0.6 * rng.standard_normal(
            (size, LATENT), dtype=np.float32
        )
        block = latent @ basis + 0.02 * rng.standard_normal((size, DIM), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        yield block.astype(np.float32)


def layout_for(kind: str, n: int) -> Layout:
    """``auto`` = what a build with the default settings chooses; the rest name a layout."""
    if kind == "auto":
        defaults = Settings()
        return choose_layout(n, DIM, defaults.exact_index_max, defaults.compressed_index_above)
    nlist = ivf_lists(n)
    factories = {
        "hnsw": ("HNSW32", 0, TARGET_RECALL),
        "ivf-flat": (f"IVF{nlist}_HNSW32,Flat", nlist, TARGET_RECALL),
        "ivf-sq8": (f"IVF{nlist}_HNSW32,SQ8", nlist, TARGET_RECALL),
        "ivf-sq8-flatq": (f"IVF{nlist},SQ8", nlist, TARGET_RECALL),
        "ivf-pq": (f"IVF{nlist}_HNSW32,PQ{pq_bytes(n, DIM)}", nlist, COMPRESSED_TARGET_RECALL),
    }
    if kind not in factories:
        raise ValueError(f"unknown layout {kind!r}; choose from {', '.join(KINDS)}")
    factory, lists, target = factories[kind]
    return layout_of(factory, lists, target)


def training_sample(n: int, layout: Layout) -> Array:
    """The first rows of the stream: the synthetic rows are independent, so a random sample."""
    wanted = min(n, TRAIN_MAX, TRAIN_PER_LIST * layout.nlist) if layout.is_ivf else 0
    taken = list(chunks(wanted))
    return np.vstack(taken) if taken else np.zeros((0, DIM), dtype=np.float32)


def rss_gb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024**2
    return 0.0


def probe(path: str, queries_path: str, breadth: int, stored_path: str) -> None:
    """In a fresh process: load the index, answer each query alone on one thread (rescoring
    from the memory-mapped vectors where the layout reranks, as the engine does). The index's
    memory is the private RSS it adds; pages of the vectors file mapped in are reported apart
    (they are the page cache, shared, and the kernel maps neighbouring cached pages too)."""
    q = np.load(queries_path)
    stored = np.load(stored_path, mmap_mode="r") if stored_path else None
    baseline = rss_gb("RssAnon")
    index = faiss.read_index(path)
    if breadth:  # 0: exact search
        set_breadth(index, breadth)
    faiss.omp_set_num_threads(1)
    for row in q[:50]:  # warm up
        search(index, row[None, :], 10, stored)
    start = time.perf_counter()
    for row in q:
        search(index, row[None, :], 10, stored)
    qps = len(q) / (time.perf_counter() - start)
    anon, mapped = rss_gb("RssAnon"), rss_gb("RssFile")
    print(json.dumps({"qps": qps, "anon_gb": anon, "file_gb": mapped, "index_gb": anon - baseline}))


def write_stored(n: int, results: Path) -> Path:
    """The corpus as a .npy file, written chunk by chunk, for the layouts that rerank (a build
    keeps embeddings.npy beside its index)."""
    path = results / f"vectors-{n}.npy"
    if not path.is_file():
        stored = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, DIM))
        for i, block in enumerate(chunks(n)):
            stored[i * CHUNK : i * CHUNK + len(block)] = block
        stored.flush()
        del stored
    return path


def measure_layout(
    kind: str,
    n: int,
    q: Array,
    truth: npt.NDArray[np.int64],
    queries_path: Path,
    results: Path = RESULTS,
) -> str:
    """One layout's markdown row."""
    layout = layout_for(kind, n)
    stored_path = write_stored(n, results) if layout.reranks else None
    stored = np.load(stored_path, mmap_mode="r") if stored_path else None
    faiss.omp_set_num_threads(2)
    start = time.perf_counter()
    index = train_and_fill(layout, DIM, training_sample(n, layout), chunks(n))
    built = time.perf_counter() - start
    if layout.is_ivf or layout.factory.startswith("HNSW"):
        breadth, measured = tune_breadth(index, q, truth, layout.target, stored=stored)
    else:  # exact search (auto below exact_index_max): nothing to tune
        breadth, measured = 0, recall(search(index, q, 10, stored)[1], truth)
    del stored
    path = results / f"index-{n}-{kind}.faiss"
    faiss.write_index(index, str(path))
    del index
    size = path.stat().st_size / 1e6
    build_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    command = [sys.executable, "-m", __name__, "--probe", str(path), str(queries_path)]
    command += [str(breadth), str(stored_path or "")]
    answer = subprocess.run(command, check=True, capture_output=True, env=child_env()).stdout
    served = json.loads(answer)
    path.unlink()
    return (
        f"| {kind}: `{layout.factory}` | {built:.0f} | {breadth} | {measured:.3f} "
        f"| {served['qps']:,.0f} | {size:,.0f} | {served['index_gb']:.2f} "
        f"| {served['anon_gb'] + served['file_gb']:.2f} ({served['anon_gb']:.2f} + "
        f"{served['file_gb']:.2f}) | {build_peak:.2f} |"
    )


def measure(n: int, kinds: Sequence[str], results: Path = RESULTS, echo: bool = True) -> list[str]:
    """Every layout's row (printed under the header as each is measured, with ``echo``)."""
    for kind in kinds:
        layout_for(kind, n)  # an unknown name fails before the long part
    results.mkdir(parents=True, exist_ok=True)
    q = next(chunks(QUERIES, stream=2))  # held out: not in the corpus
    queries_path = results / f"queries-{n}.npy"
    np.save(queries_path, q)
    faiss.omp_set_num_threads(2)
    start = time.perf_counter()
    truth = exact_top10(q, chunks(n))
    if echo:
        print(
            f"{n:,} x {DIM} synthetic vectors, {QUERIES:,} held-out queries; exact ground truth by"
        )
        print(
            f"streaming {time.perf_counter() - start:.0f} s; q/s = one query per call, one thread"
        )
        print()
        print(HEADER, flush=True)
    rows = []
    for kind in kinds:
        rows.append(measure_layout(kind, n, q, truth, queries_path, results))
        if echo:
            print(rows[-1], flush=True)
    (results / f"vectors-{n}.npy").unlink(missing_ok=True)
    return rows


if __name__ == "__main__":  # the serving-side probe, in a process of its own
    if len(sys.argv) != 6 or sys.argv[1] != "--probe":
        raise SystemExit(
            "usage: python -m service.bench.index_scale --probe INDEX QUERIES BREADTH STORED"
        )
    probe(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
