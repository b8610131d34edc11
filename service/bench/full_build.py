"""A whole default build from an empty folder: ingest a corpus, then ``paperscope build``.

``paperscope bench full-build CORPUS [DATA_DIR]`` ingests CORPUS into DATA_DIR (a new temporary
folder when not given; it must be empty, so the embedding cache is empty too), builds with the
settings of the environment, and prints the wall time of each command, each build stage's seconds
(from the build's manifest) and the peak resident memory of each command. This is the number the
speed issue's "75k papers in 15 minutes" is about. Where the corpus gives a ``primary_category``,
it also prints the NMI of the served topics against it: the quality a faster build must keep.
"""

from __future__ import annotations

import gzip
import json
import resource
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from service.artifacts import BuildFolder, current_build_dir, read_manifest
from service.bench.common import run_paperscope
from service.config import BUILDS
from service.errors import InvalidInput


@dataclass
class FullBuild:
    """What one full build cost."""

    papers: int
    backend: str
    ingest_seconds: float
    build_seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_gb: dict[str, float] = field(default_factory=dict)
    nmi: float | None = None
    """Served topics against the corpus's primary categories (None: the corpus has none)."""

    @property
    def total_seconds(self) -> float:
        return self.ingest_seconds + self.build_seconds

    def lines(self) -> list[str]:
        embed = self.stage_seconds.get("embed", 0.0)
        others = sum(self.stage_seconds.values()) - embed
        stages = ", ".join(f"{name} {s:.0f} s" for name, s in self.stage_seconds.items())
        return [
            f"full build of {self.papers:,} papers ({self.backend}): "
            f"{self.total_seconds / 60:.1f} min (ingest {self.ingest_seconds:.0f} s, "
            f"build {self.build_seconds:.0f} s)",
            f"embedding {embed:.0f} s ({self.papers / max(embed, 1e-9):.1f} papers/s); "
            f"other stages {others:.0f} s",
            f"stages: {stages}",
            "peak RSS: " + ", ".join(f"{k} {v:.2f} GB" for k, v in self.peak_rss_gb.items()),
            *(
                []
                if self.nmi is None
                else [f"topics against primary categories: NMI {self.nmi:.4f}"]
            ),
        ]


def _children_peak_gb() -> float:
    """Largest resident set of any finished child so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2


def measure(corpus: Path, data_dir: Path | None = None, echo: bool = True) -> FullBuild:
    """Ingest and build from nothing; raises InvalidInput when DATA_DIR is not empty."""
    if not corpus.is_file():
        raise InvalidInput(f"no corpus file at {corpus}")
    with tempfile.TemporaryDirectory(prefix="paperscope-full-build-") as scratch:
        folder = data_dir or Path(scratch)
        if folder.exists() and any(folder.iterdir()):
            raise InvalidInput(f"{folder} is not empty: a full build starts from nothing")
        folder.mkdir(parents=True, exist_ok=True)
        ingest = run_paperscope("ingest", str(corpus), "--data-dir", str(folder))
        ingest_peak = _children_peak_gb()
        build = run_paperscope("build", "--data-dir", str(folder))
        # the maximum over both children so far: the build's own when it is the larger
        build_peak = _children_peak_gb()
        built = current_build_dir(folder / BUILDS)
        if built is None:
            raise RuntimeError(f"the build in {folder} published nothing")
        manifest = read_manifest(built)
        nmi = topics_nmi(built, corpus)
    result = FullBuild(
        papers=manifest.papers,
        backend=manifest.model.backend,
        ingest_seconds=ingest,
        build_seconds=build,
        stage_seconds=dict(manifest.stage_seconds),
        peak_rss_gb={"ingest": round(ingest_peak, 2), "build": round(build_peak, 2)},
        nmi=nmi,
    )
    if echo:
        print("\n".join(result.lines()), flush=True)
    return result


def topics_nmi(built: Path, corpus: Path) -> float | None:
    """NMI of the build's served topics against the corpus's ``primary_category``, over the
    papers that have one (None when none has)."""
    from sklearn.metrics import normalized_mutual_info_score

    opener = gzip.open if corpus.suffix == ".gz" else open
    category: dict[str, str] = {}
    with opener(corpus, "rt", encoding="utf-8") as lines:
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:  # not JSON Lines (a JSON array, a blank line): no categories here
                continue
            if isinstance(row, dict) and row.get("primary_category"):
                category[str(row["id"])] = str(row["primary_category"])
    snapshot = BuildFolder(built).papers()
    try:
        pairs = [(category[i], topic) for _, i, topic in snapshot.topic_of_rows() if i in category]
    finally:
        snapshot.close()
    if not pairs:
        return None
    labels, topics = zip(*pairs, strict=True)
    return float(normalized_mutual_info_score(labels, topics))
