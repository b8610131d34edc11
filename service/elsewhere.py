"""Work that needs none of the current step's results, run meanwhile on the other core.

A large build's topic fit keeps one core busy (seeded UMAP runs single-threaded), so work that
does not depend on it (the BM25 index, the label term counts) runs in a child process beside
it. Children are spawned, not forked: the parent holds runtime threads (OpenVINO, OpenMP) that a
fork would copy in an unknown state.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def start_elsewhere(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Callable[[], T]:
    """Start ``work(*args, **kwargs)`` in a spawned child process; return the call that waits
    for its result (re-raising the child's error). ``work`` and its arguments must pickle."""
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(work, *args, **kwargs)
    pool.shutdown(wait=False)
    return future.result
