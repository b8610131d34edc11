"""Time an incremental build against a full one; see scripts/incremental-cost."""

from __future__ import annotations

import json
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from service.artifacts import current_build_dir, read_manifest
from service.query.engine import Engine

PAPERSCOPE = str(Path(sys.executable).parent / "paperscope")


def run(*args: str) -> float:
    """Run the CLI; wall seconds."""
    start = time.perf_counter()
    subprocess.run([PAPERSCOPE, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    source, share = Path(args[0]), float(args[1]) if len(args) > 1 else 0.01
    work = Path(tempfile.mkdtemp(prefix="paperscope-incremental-"))
    data = work / "data"
    data.mkdir()
    shutil.copy2(source / "papers.sqlite", data / "papers.sqlite")
    try:
        db = sqlite3.connect(data / "papers.sqlite")
        rows = db.execute("SELECT * FROM papers ORDER BY id").fetchall()
        names = [c[0] for c in db.execute("SELECT * FROM papers LIMIT 1").description]
        held = random.Random(0).sample(rows, round(len(rows) * share))
        new_file = work / "new-papers.jsonl"
        with new_file.open("w") as out:
            for row in held:
                record = dict(zip(names, row, strict=True))
                for field in ("authors", "categories"):
                    record[field] = json.loads(record[field])
                out.write(json.dumps(record) + "\n")
        marks = ",".join("?" * len(held))
        db.execute(f"DELETE FROM papers WHERE id IN ({marks})", [r[0] for r in held])  # noqa: S608
        hashes = [r[names.index("content_hash")] for r in held]
        db.execute(f"DELETE FROM embeddings WHERE content_hash IN ({marks})", hashes)  # noqa: S608
        db.commit()
        db.close()
        n_total = len(rows)
        print(f"corpus {n_total} papers; holding out {len(held)} ({share:.1%})", flush=True)

        full_wall = run("build", "--force", "--data-dir", str(data))
        full = read_manifest(_current(data))
        print(
            f"full build of {full.papers} (embeddings cached): {full_wall:.1f} s wall, "
            f"stages {full.stage_seconds}",
            flush=True,
        )

        ingest_wall = run("ingest", str(new_file), "--data-dir", str(data))
        build_wall = run("build", "--data-dir", str(data))
        inc = read_manifest(_current(data))
        assert inc.fit.mode == "incremental", inc.fit
        rate = inc.embedded_new / inc.stage_seconds["embed"]
        full_from_scratch = full_wall + n_total / rate
        inc_wall = ingest_wall + build_wall
        print(
            f"incremental: ingest {ingest_wall:.1f} s + build {build_wall:.1f} s "
            f"= {inc_wall:.1f} s; stages {inc.stage_seconds}; embedded {inc.embedded_new} "
            f"at {rate:.1f}/s",
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
        noise_new = _placed_noise(data, {r[0] for r in held})
        print(
            f"placed papers left unclustered: {noise_new:.1%} (build overall {inc.noise_share:.1%})"
        )

        if "--refit" in sys.argv:
            placed = _topics_of(data, {r[0] for r in held})
            refit_wall = run("build", "--force", "--data-dir", str(data))
            refit = _topics_of(data, set(placed))
            both = [p for p in placed if placed[p] >= 0 and refit[p] >= 0]
            same = np.mean([placed[p] == refit[p] for p in both]) if both else float("nan")
            print(
                f"refit {refit_wall:.1f} s: of {len(both)} placed papers clustered in both, "
                f"{same:.1%} have the refit's topic id"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _current(data: Path) -> Path:
    folder = current_build_dir(data / "builds")
    assert folder is not None
    return folder


def _topics_of(data: Path, ids: set[str]) -> dict[str, int]:
    engine = Engine(_current(data), None)
    return {pid: engine.paper(pid).topic_id for pid in ids}


def _placed_noise(data: Path, ids: set[str]) -> float:
    topics = _topics_of(data, ids)
    return float(np.mean([t == -1 for t in topics.values()]))


if __name__ == "__main__":
    main()
