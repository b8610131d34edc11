"""What adding 1% new papers costs compared with a full build (the goal: at most 5%).

``paperscope bench incremental-cost DATA_DIR [SHARE] [--refit]``:

1. copies DATA_DIR's store, holds out a random SHARE (default 1%) of its papers and forgets
   their cached embeddings (whole-paper and window texts alike), then builds the rest in full
   (``paperscope build --force``; every other embedding comes from the cache);
2. runs ``paperscope ingest`` on the held-out papers, then ``paperscope build`` (incremental),
   timed;
3. with ``--refit``, also refits everything and compares the placed papers' topics with the
   refit's.

Each step runs the real CLI in its own process. Set PAPERSCOPE_BACKEND (and any embedding
setting) as DATA_DIR was built, so the other papers' embeddings are found in its cache.

Output: the full build's wall time, the incremental ingest + build and its stage seconds, the
papers embedded per second, what a full build from scratch would cost at that rate, the two
ratios (incremental over full from scratch: the figure the goal is about; incremental over a
full build with every embedding cached), the peak RSS of any step, and how many placed papers
were left unclustered.
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import tempfile
from pathlib import Path

import numpy as np

from service.artifacts import BuildFolder, current_build_dir, read_manifest
from service.bench.common import run_paperscope
from service.config import BUILDS, DATABASE, load_settings
from service.embed.passages import load_windowing, split, text_hash
from service.schemas import Paper
from service.store import Store, backup_database


def peak_rss_gb() -> float:
    """The largest resident set of any finished child process."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2


def hold_out(data: Path, share: float) -> tuple[list[Paper], int]:
    """Remove a seeded random ``share`` of the papers in ``data``'s store and their cached
    embeddings; the removed papers and how many papers there were."""
    settings = load_settings(data_dir=data)
    windowing = load_windowing(settings)
    with Store(settings.db_path) as store:
        stored = list(store.papers())  # in id order, as the sample has always been drawn
        held = random.Random(0).sample(stored, round(len(stored) * share))
        for paper, _ in held:
            store.delete(paper.id)
        hashes = [content_hash for _, content_hash in held]
        hashes += [
            text_hash(window)
            for paper, _ in held
            for window in split(paper.title, paper.abstract, windowing)
        ]
        forgotten = store.forget_embeddings(hashes)
    if held and forgotten < len(held):
        raise RuntimeError(
            f"forgot only {forgotten} cached embeddings for {len(held)} held-out papers: "
            "set the embedding settings (PAPERSCOPE_MODEL, PAPERSCOPE_EMBED_WINDOW_*) as "
            "DATA_DIR was built"
        )
    return [paper for paper, _ in held], len(stored)


def measure(source: Path, share: float, refit: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="paperscope-incremental-"))
    data = work / "data"
    data.mkdir()
    backup_database(source / DATABASE, data / DATABASE)
    try:
        held, n_total = hold_out(data, share)
        new_file = work / "new-papers.jsonl"
        with new_file.open("w", encoding="utf-8") as out:
            for paper in held:
                out.write(json.dumps(paper.model_dump(), ensure_ascii=False) + "\n")
        print(f"corpus {n_total} papers; holding out {len(held)} ({share:.1%})", flush=True)

        full_wall = run_paperscope("build", "--force", "--data-dir", str(data))
        full = read_manifest(_current(data))
        print(
            f"full build of {full.papers} (embeddings cached): {full_wall:.1f} s wall, "
            f"stages {full.stage_seconds}",
            flush=True,
        )

        ingest_wall = run_paperscope("ingest", str(new_file), "--data-dir", str(data))
        build_wall = run_paperscope("build", "--data-dir", str(data))
        inc = read_manifest(_current(data))
        if inc.fit.mode != "incremental":
            raise RuntimeError(f"the build after adding the papers was not incremental: {inc.fit}")
        rate = len(held) / max(inc.stage_seconds["embed"], 1e-9)  # papers (not window texts) / s
        full_from_scratch = full_wall + n_total / rate
        inc_wall = ingest_wall + build_wall
        print(
            f"incremental: ingest {ingest_wall:.1f} s + build {build_wall:.1f} s "
            f"= {inc_wall:.1f} s; stages {inc.stage_seconds}; embedded {inc.embedded_new} "
            f"texts for {len(held)} papers at {rate:.1f} papers/s",
            flush=True,
        )
        print(
            f"full build from scratch (embedding {n_total} at that rate): "
            f"{full_from_scratch:.0f} s",
            flush=True,
        )
        print(f"ratio incremental / full from scratch: {inc_wall / full_from_scratch:.1%}")
        print(f"ratio incremental / full with every embedding cached: {inc_wall / full_wall:.1%}")
        print(f"peak RSS of any step: {peak_rss_gb():.2f} GB")
        placed = _topics_of(data, {paper.id for paper in held})
        noise_new = float(np.mean([t == -1 for t in placed.values()])) if placed else 0.0
        print(
            f"placed papers left unclustered: {noise_new:.1%} (build overall {inc.noise_share:.1%})"
        )

        if refit:
            refit_wall = run_paperscope("build", "--force", "--data-dir", str(data))
            refitted = _topics_of(data, set(placed))
            both = [p for p in placed if placed[p] >= 0 and refitted[p] >= 0]
            same = np.mean([placed[p] == refitted[p] for p in both]) if both else float("nan")
            print(
                f"refit {refit_wall:.1f} s: of {len(both)} placed papers clustered in both, "
                f"{same:.1%} have the refit's topic id"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _current(data: Path) -> Path:
    folder = current_build_dir(data / BUILDS)
    if folder is None:
        raise RuntimeError(f"no build was published in {data}")
    return folder


def _topics_of(data: Path, ids: set[str]) -> dict[str, int]:
    """The topic of each of ``ids`` in the published build."""
    snapshot = BuildFolder(_current(data)).papers()
    try:
        return {pid: topic for _, pid, topic in snapshot.topic_of_rows() if pid in ids}
    finally:
        snapshot.close()
