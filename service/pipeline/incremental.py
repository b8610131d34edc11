"""Incremental builds: fold new or changed papers into the previous build's topics and map.

Refitting UMAP and HDBSCAN costs minutes on a large corpus and renumbers nothing only by luck;
when few papers changed, a build instead keeps every unchanged paper's topic and map position
and places the new or changed ones exactly as live additions are placed (:mod:`service.query.live`).
Topic labels and the coarse groups are kept as they were. The new build keeps the base's rows in
their order and appends the new ones, so when nothing was removed or changed the base's index
is reused with the new vectors added, and only the new papers are checked for duplicates.

Drift is bounded: the papers changed since the last full fit (summed over incremental builds)
may not exceed ``incremental_limit`` of the papers that fit saw; past it, or when the model or
any topic setting changed, the build refits everything (as ``paperscope build --force`` does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from service.artifacts import ASSIGNMENTS, INDEX, MAP, PAPERS, TOPICS, BuildFolder
from service.schemas import NOISE_TOPIC, BuildManifest, FitInfo, IndexInfo
from service.search.duplicates import find_duplicates
from service.search.index import remeasure
from service.topics.lineage import Carried
from service.topics.model import (
    Topic,
    TopicGroup,
    TopicModel,
    confidence_or_sure,
    merged_rows,
    outliers_or_noise,
)
from service.topics.placement import Placer

log = logging.getLogger(__name__)

NEEDED = (MAP, ASSIGNMENTS, TOPICS, PAPERS, INDEX)


@dataclass(frozen=True)
class Plan:
    """What an incremental build changes relative to the build it extends."""

    base: Path
    manifest: BuildManifest
    order: list[int]
    """Positions in the snapshot (id order) of the new build's rows: the unchanged papers in
    the base build's row order, then the new or changed ones."""
    kept_old: npt.NDArray[np.int64]
    """Base-build rows of the unchanged papers, which are rows 0..k-1 of the new build."""
    placed: npt.NDArray[np.int64]
    """Rows of the new build to place (new or changed papers): k..n-1."""
    removed: int
    fit: FitInfo

    @property
    def kept_new(self) -> npt.NDArray[np.int64]:
        return np.arange(len(self.kept_old), dtype=np.int64)

    @property
    def appends_only(self) -> bool:
        """Every base row is kept in place: the new build is the base plus rows at the end."""
        return self.removed == 0 and bool(
            np.array_equal(self.kept_old, np.arange(self.manifest.papers))
        )


@dataclass(frozen=True)
class Folded:
    carried: Carried
    coords: npt.NDArray[np.float32]
    fit: FitInfo


def plan(
    base: Path | None,
    manifest: BuildManifest | None,
    ids: list[str],
    hashes: list[str],
    limit: float,
) -> Plan | None:
    """An incremental plan over ``base``, or None (with the reason logged) for a full fit.

    The caller has checked that the model and the build settings are the base's.
    """
    if base is None or manifest is None or limit <= 0:
        return None
    if BuildFolder(base).missing(NEEDED):
        log.info("full fit: build %s lacks what an incremental build needs", base.name)
        return None
    old_row_of = _base_rows(base)
    kept: list[tuple[int, int]] = []  # (base row, snapshot position)
    placed: list[int] = []
    for position, (paper_id, text_hash) in enumerate(zip(ids, hashes, strict=True)):
        old = old_row_of.get((paper_id, text_hash))
        if old is None:
            placed.append(position)
        else:
            kept.append((old, position))
    kept.sort()
    removed = len({paper_id for paper_id, _ in old_row_of} - set(ids))
    fitted = manifest.fit.fitted_papers or manifest.papers
    changed = manifest.fit.changed_since_fit + len(placed) + removed
    if changed > limit * fitted:
        log.info(
            "full fit: %d papers changed since the last full fit of %d (limit %.0f%%)",
            changed,
            fitted,
            100 * limit,
        )
        return None
    log.info(
        "incremental build over %s: %d papers to place, %d removed, %d kept",
        base.name,
        len(placed),
        removed,
        len(kept),
    )
    fit = FitInfo(
        mode="incremental",
        fitted_build=manifest.fit.fitted_build or manifest.build_id,
        fitted_papers=fitted,
        changed_since_fit=changed,
        sampled_papers=manifest.fit.sampled_papers,
    )
    return Plan(
        base,
        manifest,
        [position for _, position in kept] + placed,
        np.asarray([old for old, _ in kept], dtype=np.int64),
        np.arange(len(kept), len(ids), dtype=np.int64),
        removed,
        fit,
    )


def extend_index(
    plan: Plan, vectors: npt.NDArray[np.float32]
) -> tuple[faiss.Index, IndexInfo] | None:
    """The base build's index with the new rows added, when the base's rows are all kept in
    place (IVF lists and HNSW graphs both take new vectors as they are); recall@10 is measured
    again and the search breadth raised if it fell short. None when it has to be built afresh."""
    if not plan.appends_only:
        return None
    info = plan.manifest.index
    index = BuildFolder(plan.base).index(plan.manifest)
    index.add(np.ascontiguousarray(vectors[plan.placed]))
    measured = remeasure(index, info, vectors)
    reason = f"{info.reason}; {len(plan.placed)} papers added by an incremental build"
    return index, measured.model_copy(update={"reason": reason})


def duplicates(
    plan: Plan, index: faiss.Index, vectors: npt.NDArray[np.float32], threshold: float
) -> list[tuple[int, int, float]]:
    """The base build's duplicate pairs among kept papers, plus pairs involving new rows."""
    new_row_of = dict(zip(plan.kept_old.tolist(), plan.kept_new.tolist(), strict=True))
    pairs = {}
    for old_a, old_b, old_score in BuildFolder(plan.base).duplicates():
        a, b = new_row_of.get(old_a), new_row_of.get(old_b)
        if a is not None and b is not None:
            pairs[(min(a, b), max(a, b))] = old_score
    for a, b, score in find_duplicates(index, vectors, threshold, plan.placed):
        pairs[(a, b)] = score
    return sorted(((a, b, s) for (a, b), s in pairs.items()), key=lambda p: (-p[2], p[0], p[1]))


def _base_rows(base: Path) -> dict[tuple[str, str], int]:
    """(paper id, content hash) -> row in the base build."""
    papers = BuildFolder(base).papers()
    try:
        return papers.row_of_content()
    finally:
        papers.close()


def fold(plan: Plan, vectors: npt.NDArray[np.float32]) -> Folded:
    """Topics, map and clustering-space positions for the new rows: kept ones copied from the
    base build, the rest placed against it."""
    base, n = BuildFolder(plan.base), len(vectors)
    placer = Placer(base, plan.manifest.topics.umap_neighbors)
    placement = placer.place(vectors[plan.placed])

    old_assignments = base.assignments()
    old_outliers = outliers_or_noise(old_assignments, base.outliers())
    old_confidence = confidence_or_sure(old_assignments, base.confidence())
    old_coords = base.map_coords()

    def merge(old: npt.ArrayLike, new: npt.ArrayLike, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        """Kept rows from the base build's ``old``, placed rows from ``new``."""
        return merged_rows(
            n, [(plan.kept_new, np.asarray(old)[plan.kept_old]), (plan.placed, new)], dtype
        )

    assignments = merge(old_assignments, placement.topics, np.int32)
    outliers = merge(old_outliers, placement.outliers, np.bool_)
    confidence = merge(old_confidence, placement.confidence, np.float32)
    coords = merge(old_coords, placement.coords, np.float32)
    reduced = None
    if placement.reduced is not None:
        old_reduced = base.reduced()
        assert old_reduced is not None  # placement gave positions: the base has a clustering space
        reduced = merge(old_reduced, placement.reduced, np.float32)

    old = base.topics()
    new_row_of = dict(zip(plan.kept_old.tolist(), plan.kept_new.tolist(), strict=True))
    topics: list[Topic] = []
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in old.topics:
        kept = [new_row_of[r] for r in entry.members if r in new_row_of]
        added = [int(r) for r in plan.placed[placement.topics == entry.id]]
        topics.append(Topic(entry.id, entry.label, entry.keywords, kept + added, entry.name))
        if entry.id != NOISE_TOPIC:
            parents[entry.id] = [(entry.id, len(kept))]
    if NOISE_TOPIC not in {t.id for t in topics}:
        noise = [int(r) for r in plan.placed[placement.topics == NOISE_TOPIC]]
        if noise:
            topics.append(Topic(NOISE_TOPIC, "unclustered", [], noise))
    model = TopicModel(
        assignments=assignments,
        probabilities=np.ones(n, dtype=np.float32),
        topics=topics,
        params=plan.manifest.topics,
        clusterer=None,  # the base's clusterer file is copied as is
        hdbscan_to_topic=dict(old.hdbscan_to_topic),
        groups=[TopicGroup(g.id, g.label, g.keywords, g.children, g.name) for g in old.groups],
        reduced=reduced,
        outliers=outliers,
        confidence=confidence,
    )
    stats: dict[str, float] = {
        "placed": len(plan.placed),
        "removed": plan.removed,
        "papers_keeping_topic_id": 1.0,
    }
    carried = Carried(model, parents, old.next_topic_id, stats)
    return Folded(carried, coords, plan.fit)
