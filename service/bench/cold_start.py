"""Seconds from starting ``paperscope serve`` to ``/api/v1/ready`` answering 200.

``paperscope bench cold-start DATA_DIR [RUNS]`` starts the server RUNS times on the build in
DATA_DIR (set PAPERSCOPE_BACKEND etc. as the build was made) and prints ``run i: ready after
S s`` for each: process start, imports, loading the build and the model, until the first ready
answer (polled every 50 ms).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from service.bench.common import free_port, is_ready, server

POLL = 0.05
GIVE_UP = 600.0


def measure(
    data_dir: Path, runs: int, extra_env: Mapping[str, str] | None = None, echo: bool = True
) -> list[float]:
    """Seconds to ready of each run."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    seconds: list[float] = []
    for run in range(1, runs + 1):
        start = time.perf_counter()
        with server(data_dir, port, extra_env) as process:
            while not is_ready(base):
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited with code {process.returncode}")
                if time.perf_counter() - start > GIVE_UP:
                    raise RuntimeError(f"the server was not ready after {GIVE_UP:.0f} s")
                time.sleep(POLL)
            seconds.append(time.perf_counter() - start)
        if echo:
            print(f"run {run}: ready after {seconds[-1]:.2f} s", flush=True)
    return seconds
