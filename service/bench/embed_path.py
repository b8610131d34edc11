"""How close a build's embedding path comes to what the runtime alone achieves.

``paperscope bench embed-path CORPUS [N_PAPERS] [RUNS]`` takes N papers, splits them into
windows as a build does, and times, interleaved RUNS times:

- **runtime**: the model alone, on the windows already tokenised and batched (what the default
  backend can do here; no cache, no splitting, no saving);
- **fixed shapes** (where the backend has them): the same, longest first in batches of a few
  fixed shapes, the model compiled for each shape in each run (as a long build runs it);
- **build path**: :func:`service.embed.passages.embed_papers` into an empty store, as a build
  from nothing runs it: splitting, hashing, cache lookup, tokens to the model, saving each chunk
  (in fixed shapes from ``FIXED_SHAPES_FROM`` windows).

It prints tokens per second of each (median run), the build path's share of the runtime's speed,
and how long compiling the shapes took (a long build pays it once). Interleaving puts a shared
machine's load on all alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import typer

from service.config import load_settings
from service.embed.backends import load_embedder
from service.embed.passages import embed_papers, load_windowing, split_all
from service.embed.pooled import Hidden, PooledTransformer, TokenArray
from service.store import Store, content_hash


@dataclass(frozen=True)
class PathRates:
    papers: int
    windows: int
    tokens: int
    runtime: float
    """Tokens per second of the model alone, median run."""
    build_path: float
    """Tokens per second of a build's embedding path, median run."""
    fixed: float | None = None
    """Tokens per second of the model alone in fixed shapes, compiling included, median run."""
    compile_seconds: float = 0.0
    """Compiling the fixed shapes, per run."""


def measure(papers: Sequence[tuple[str, str]], runs: int, echo: bool = True) -> PathRates:
    settings = load_settings()
    embedder = load_embedder(settings)
    if not isinstance(embedder, PooledTransformer):
        raise typer.BadParameter(f"{embedder.backend} does not run an exported model")
    windowing = load_windowing(settings)
    windows = [window for paper in split_all(papers, windowing) for window in paper]
    inputs = [window.model_input for window in windows]
    ids = embedder.token_ids(inputs)
    tokens = sum(len(i) for i in ids)
    hashes = [content_hash(title, abstract) for title, abstract in papers]
    embedder.encode(inputs[:64])  # warm-up

    def ignore(key: list[int], hidden: Hidden, mask: TokenArray) -> None:
        pass

    def runtime() -> None:
        embedder.run(embedder.padded(ids), ignore)

    def fixed() -> None:
        embedder.run(embedder.padded(ids, fixed=True), ignore, fixed=True)

    def build_path() -> None:
        with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "p.sqlite") as store:
            embed_papers(store, embedder, papers, hashes, windowing, progress=False)

    steps: dict[str, Callable[[], None]] = {"runtime": runtime}
    if embedder.fixed_shapes:
        steps["fixed shapes"] = fixed
    steps["build path"] = build_path
    timings: dict[str, list[float]] = {name: [] for name in steps}
    compiling = embedder.compile_seconds
    for run in range(runs):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            timings[name].append(time.perf_counter() - start)
            if echo:
                typer.echo(f"run {run + 1} {name}: {tokens / timings[name][-1]:,.0f} tokens/s")
    rates = PathRates(
        papers=len(papers),
        windows=len(windows),
        tokens=tokens,
        runtime=tokens / statistics.median(timings["runtime"]),
        build_path=tokens / statistics.median(timings["build path"]),
        fixed=tokens / statistics.median(timings["fixed shapes"])
        if embedder.fixed_shapes
        else None,
        compile_seconds=(embedder.compile_seconds - compiling) / runs,
    )
    if echo:
        typer.echo(
            f"{rates.papers:,} papers, {rates.windows:,} windows, {rates.tokens:,} tokens "
            f"({embedder.backend}); median of {runs}:\n"
            f"runtime alone  {rates.runtime:9,.0f} tokens/s"
        )
        if rates.fixed is not None:
            typer.echo(
                f"fixed shapes   {rates.fixed:9,.0f} tokens/s ({rates.fixed / rates.runtime:.2f}x;"
                f" {rates.compile_seconds:.1f} s a run compiling shapes)"
            )
        typer.echo(
            f"build path     {rates.build_path:9,.0f} tokens/s "
            f"({rates.build_path / rates.runtime:.0%} of the runtime's)"
        )
    return rates


def corpus_papers(path: Path, n: int) -> list[tuple[str, str]]:
    """The first N papers of a file ``paperscope ingest`` reads, as (title, abstract)."""
    from itertools import islice

    from service.ingest import read_records
    from service.schemas import Paper

    _, records = read_records(path)
    papers = (record for record in records if isinstance(record, Paper))
    return [(paper.title, paper.abstract) for paper in islice(papers, n)]
