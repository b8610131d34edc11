"""The process's runtime: the BLAS kernels faiss runs, and work run meanwhile in a child.

**BLAS kernels.** faiss-cpu's wheel bundles OpenBLAS 0.3.15, which does not recognise recent
Xeons (Sapphire Rapids and later) and falls back to its SSE3 (Prescott) kernels: on the 2-core
build machine an exact search of 4,096 queries over 20,000 vectors took 2.3 s, 5x numpy's matrix
product of the same shapes. OpenBLAS reads ``OPENBLAS_CORETYPE`` when it loads, so naming the
Skylake-X kernels before faiss is imported brings the search to 0.44 s (``paperscope bench
exact-search``, docs/benchmarks.md). They need AVX-512 F, BW, CD, DQ and VL; a CPU without all
five keeps OpenBLAS's own choice, and so does anyone who set the variable themselves.

**Work elsewhere.** A large build's topic fit keeps one core busy (seeded UMAP runs
single-threaded), so work that does not depend on it (the BM25 index, the label term counts)
runs in a child process beside it. Children are spawned, not forked: the parent holds runtime
threads (OpenVINO, OpenMP) that a fork would copy in an unknown state.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, MutableMapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

AVX512_FLAGS = frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})
KERNEL = "SKYLAKEX"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first CPU's feature flags (empty where /proc/cpuinfo is not there, e.g. macOS)."""
    try:
        with cpuinfo.open() as lines:
            for line in lines:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def prefer_avx512_kernels(
    environ: MutableMapping[str, str] = os.environ, flags: frozenset[str] | None = None
) -> str | None:
    """Set ``OPENBLAS_CORETYPE`` to the AVX-512 kernels where the CPU has them and nobody chose;
    returns the value now in force (None: OpenBLAS picks)."""
    if (
        "OPENBLAS_CORETYPE" not in environ
        and (cpu_flags() if flags is None else flags) >= AVX512_FLAGS
    ):
        environ["OPENBLAS_CORETYPE"] = KERNEL
    return environ.get("OPENBLAS_CORETYPE")


def start_elsewhere(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Callable[[], T]:
    """Start ``work(*args, **kwargs)`` in a spawned child process; return the call that waits
    for its result (re-raising the child's error). ``work`` and its arguments must pickle."""
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(work, *args, **kwargs)
    pool.shutdown(wait=False)
    return future.result
