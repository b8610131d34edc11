"""How many papers keep their topic id across rebuilds (stable topic ids, service.topics.lineage).

``paperscope bench topic-stability DATA_DIR [SHARE] [--only-added]`` works on a copy of
DATA_DIR's store (its embedding cache included, so nothing is re-embedded; set
PAPERSCOPE_BACKEND etc. as DATA_DIR was built) and runs full refits (``build --force``):

1. the same corpus rebuilt with another UMAP seed (skipped with --only-added);
2. the corpus minus a random SHARE (default 5%) rebuilt, then those papers added back and
   rebuilt.

Each prints the rebuild's lineage figures: the share of papers that kept their topic id, and how
the topics were matched to the previous build's (by papers, by centroid, new).
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

from service.config import DATABASE, configure_runtime, load_settings
from service.embed.backends import load_embedder
from service.pipeline.pipeline import run_build
from service.schemas import BuildManifest, IngestReport
from service.store import Store, backup_database


def kept(manifest: BuildManifest) -> str:
    ids = manifest.topic_ids
    return (
        f"{ids.get('papers_keeping_topic_id')} of papers kept their topic id; "
        f"topics matched by papers {ids.get('matched_by_papers')}, by centroid "
        f"{ids.get('matched_by_centroid')}, new {ids.get('new_topics')} (of {manifest.n_topics})"
    )


def measure(source: Path, share: float, only_added: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="paperscope-stability-"))
    backup_database(source / DATABASE, work / DATABASE)
    try:
        base = load_settings(data_dir=work)
        configure_runtime(base)
        embedder = load_embedder(base)
        if not only_added:
            run_build(base, lambda: embedder, force=True, progress=False)
            reseeded = load_settings(data_dir=work, seed=base.seed + 1)
            _, manifest, _ = run_build(reseeded, lambda: embedder, force=True, progress=False)
            print(f"another seed ({base.seed} -> {base.seed + 1}): {kept(manifest)}", flush=True)

        with Store(base.db_path) as store:
            papers = [paper for paper, _ in store.papers()]
            held_out = random.Random(0).sample(papers, round(len(papers) * share))
            for paper in held_out:
                store.delete(paper.id)
        run_build(base, lambda: embedder, force=True, progress=False)
        with Store(base.db_path) as store:
            store.ingest(held_out, IngestReport(file="held-out", format="papers"))
        _, manifest, _ = run_build(base, lambda: embedder, force=True, progress=False)
        print(f"{len(held_out)} papers ({share:.0%}) added: {kept(manifest)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
