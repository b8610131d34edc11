"""What the benchmarks share: where the repository and its neighbours are, the ``paperscope``
command of this very checkout for child processes, and a server started on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import service

REPO = Path(service.__file__).resolve().parents[1]
"""The checkout this package runs from (its ``scripts/`` and ``models/`` live here)."""
SHARED = REPO.parent / "shared"
"""Data sets kept beside the checkout (``../shared`` from the repository root)."""


def runtime_defaults() -> None:
    """What ``scripts/*`` exported before Python started: numba's cache (compiled UMAP code is
    reused between runs) and quiet tokenizers. Call before numba or transformers are imported."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "paperscope"
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache / "numba"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def paperscope_command() -> list[str]:
    """``paperscope`` as a child process, importing this package (not whichever checkout the
    environment's console script was installed from): pair it with :func:`child_env`."""
    return [sys.executable, "-m", "service"]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment with this checkout first on ``PYTHONPATH`` (:func:`paperscope_command`)."""
    env = dict(os.environ)
    paths = [str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra or {})
    return env


def run_paperscope(*args: str, extra_env: Mapping[str, str] | None = None) -> float:
    """Run the CLI to completion (stdout discarded, stderr shown); wall seconds."""
    start = time.perf_counter()
    subprocess.run(
        [*paperscope_command(), *args],
        check=True,
        stdout=subprocess.DEVNULL,
        env=child_env(extra_env),
    )
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_ready(base: str) -> bool:
    """Whether ``GET /api/v1/ready`` answers 200."""
    try:
        with urllib.request.urlopen(f"{base}/api/v1/ready", timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


def wait_ready(base: str, seconds: float, poll: float = 0.5) -> bool:
    """Poll until the server is ready or ``seconds`` passed; whether it became ready."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if is_ready(base):
            return True
        time.sleep(poll)
    return False


def fetch(url: str, timeout: float = 60, headers: Mapping[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read()
    return body


@contextmanager
def server(
    data_dir: Path,
    port: int,
    extra_env: Mapping[str, str] | None = None,
    log: IO[bytes] | int = subprocess.DEVNULL,
) -> Iterator[subprocess.Popen[bytes]]:
    """``paperscope serve`` on ``port`` for ``data_dir``, stopped (SIGTERM) on leaving."""
    env = child_env({"PAPERSCOPE_DATA_DIR": str(data_dir), **(extra_env or {})})
    process = subprocess.Popen(
        [*paperscope_command(), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
