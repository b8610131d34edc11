"""One table of the speed figures, each measured by the ``paperscope bench`` command in its row.

``paperscope bench all DATA_DIR [SECONDS] [INDEX_N]`` runs, in order: ``embed 115 3`` (throughput
of each backend), ``cold-start DATA_DIR 3`` (server start to ready), three wrk load tests over
HTTP (``load-test``: like-this by id and text search with 64 connections for SECONDS, default
30; text search on one connection for 10 s, the latency figure), and ``index-scale INDEX_N
auto`` (default 200,000 synthetic vectors). DATA_DIR must hold a build (set PAPERSCOPE_BACKEND
as it was built). The load tests' server runs PAPERSCOPE_WORKERS processes (default here: one
per core); the cold start uses the settings as they are.

Output: a line about the machine on stderr, then a markdown table with one row per figure:
what was measured, the result, and the ``paperscope bench`` command that measured it.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from service.bench import cold_start, embed, index_scale, load_test

EMBED_PAPERS = 115
EMBED_REPEATS = 3
COLD_RUNS = 3
LATENCY_SECONDS = 10


def cores() -> int:
    """CPUs this process may run on (what ``nproc`` says)."""
    return len(os.sched_getaffinity(0))


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024**3
    return f"{cores()} cores, {memory} GiB, {platform.machine()}"


def load_cells(summary: load_test.LoadSummary) -> str:
    p = summary.latency_ms
    return (
        f"{summary.rate:,.0f} req/s, p50 {p['50']:.1f} ms, p99 {p['99']:.1f} ms, "
        f"{summary.errors} errors"
    )


def index_cells(row: str) -> tuple[str, str]:
    """The summary of one ``index-scale`` row, and its layout cell."""
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    kind, build, breadth, recall, qps, size, rss = cells[:7]
    return (
        f"build {build} s, recall@10 {recall} (breadth {breadth}), "
        f"{qps} q/s 1 thread, {size} MB, index RSS {rss} GB"
    ), kind


def run_all(data_dir: Path, seconds: int, index_n: int) -> list[str]:
    """The table's lines (printed as well)."""
    print(f"machine: {machine()}; data: {data_dir}", file=sys.stderr, flush=True)
    workers = os.environ.get("PAPERSCOPE_WORKERS") or str(cores())
    served = {"PAPERSCOPE_WORKERS": workers}
    rates = embed.measure(EMBED_PAPERS, EMBED_REPEATS, echo=False)
    cold = cold_start.measure(data_dir, COLD_RUNS, echo=False)
    similar = load_test.measure(data_dir, seconds, mix="similar", extra_env=served, echo=False)
    search = load_test.measure(data_dir, seconds, mix="search", extra_env=served, echo=False)
    search1 = load_test.measure(
        data_dir, LATENCY_SECONDS, mix="search", connections=1, extra_env=served, echo=False
    )
    index_rows = index_scale.measure(index_n, ["auto"], echo=False)

    lines = ["| figure | measured | paperscope bench |", "|---|---|---|"]
    reference = rates[0].backend if rates else "torch"
    for rate in rates:
        lines.append(
            f"| embed, {rate.backend} | {rate.rate:.1f} abstracts/s (x{rate.speedup:.2f} vs "
            f"{reference}) | embed |"
        )
    lines.append(
        f"| cold start to ready | {min(cold):.2f}-{max(cold):.2f} s ({len(cold)} runs) "
        "| cold-start |"
    )
    lines.append(
        f"| like-this by id over HTTP, 64 connections, {workers} workers "
        f"| {load_cells(similar)} | load-test |"
    )
    lines.append(
        f"| text search over HTTP (default mode), 64 connections | {load_cells(search)} "
        "| load-test |"
    )
    lines.append(
        f"| text search over HTTP, one connection (latency) | {load_cells(search1)} | load-test |"
    )
    for row in index_rows:
        cells, kind = index_cells(row)
        lines.append(f"| index {kind}, synthetic | {cells} | index-scale |")
    print("\n".join(lines), flush=True)
    return lines
