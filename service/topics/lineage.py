"""Topic identity across builds: a rebuild keeps the ids of topics that still exist.

HDBSCAN numbers clusters afresh on every fit. After a rebuild, each new topic is matched to the
previous build's topics, first by the papers they share (Jaccard, one-to-one by the Hungarian
method), then, for topics left over, by the cosine of their centroids. A matched topic keeps its
old id; a genuinely new topic gets an id never used before (``next_topic_id`` only grows). Each
topic records its parents: the previous topics that gave it at least :data:`PARENT_SHARE` of its
papers, so splits (one parent, several children) and merges (several parents) can be followed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from service.artifacts import UNREADABLE, BuildFolder
from service.schemas import NOISE_TOPIC
from service.topics.cluster import ordered_members
from service.topics.model import Topic, TopicGroup, TopicModel
from service.topics.placement import keep_previous_topics

log = logging.getLogger(__name__)

MIN_JACCARD = 0.25
MIN_CENTROID_COSINE = 0.92
PARENT_SHARE = 0.1


@dataclass
class PreviousTopics:
    """What a rebuild needs to know about the build it replaces."""

    build_id: str
    topic_of: dict[str, int]
    centroids: dict[int, npt.NDArray[np.float32]]
    next_id: int


@dataclass
class Carried:
    """The renumbered model and how its ids came about."""

    model: TopicModel
    parents: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    """Topic id -> [(previous topic id, papers shared)]."""
    next_id: int = 0
    stats: dict[str, float] = field(default_factory=dict)


def load_previous(build_dir: Path | None, model_revision: str) -> PreviousTopics | None:
    """The previous build's topics, or None when there is none, it was embedded with another
    model (its centroids live in another space), or it cannot be read (then ids start afresh)."""
    if build_dir is None:
        return None
    try:
        build = BuildFolder(build_dir)
        if build.manifest().model.revision != model_revision:
            log.info("previous build %s used another model: new topic ids", build_dir.name)
            return None
        return _read_previous(build)
    except UNREADABLE as err:
        log.warning("cannot read previous build %s (%s): new topic ids", build_dir.name, err)
        return None


def _read_previous(build: BuildFolder) -> PreviousTopics:
    topics = build.topics()
    papers = build.papers()
    try:
        rows = papers.topic_of_rows()
    finally:
        papers.close()
    vectors = build.embeddings()
    members: dict[int, list[int]] = {}
    for row, _, topic in rows:
        if topic != NOISE_TOPIC:
            members.setdefault(topic, []).append(row)
    centroids = {t: _unit(np.asarray(vectors[m]).mean(axis=0)) for t, m in members.items()}
    return PreviousTopics(
        build_id=build.name,
        topic_of={pid: topic for _, pid, topic in rows if topic != NOISE_TOPIC},
        centroids=centroids,
        next_id=topics.next_topic_id,
    )


def _unit(vector: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    return np.asarray(vector / max(float(np.linalg.norm(vector)), 1e-12), dtype=np.float32)


def carry_over(
    model: TopicModel,
    paper_ids: list[str],
    vectors: npt.NDArray[np.float32],
    previous: PreviousTopics | None,
) -> Carried:
    fine = [t for t in model.topics if t.id != NOISE_TOPIC]
    if previous is None:
        return Carried(model, {t.id: [] for t in fine}, len(fine), {"matched": 0.0})
    prev_ids = sorted(previous.centroids)
    column = {p: j for j, p in enumerate(prev_ids)}
    prev_sizes = np.zeros(len(prev_ids))
    for old_topic in previous.topic_of.values():
        prev_sizes[column[old_topic]] += 1
    shared = np.zeros((len(fine), len(prev_ids)))
    for i, topic in enumerate(fine):
        for row in topic.members:
            old = previous.topic_of.get(paper_ids[row])
            if old is not None:
                shared[i, column[old]] += 1
    sizes = np.array([t.size for t in fine], dtype=float)[:, None]
    jaccard = shared / np.maximum(sizes + prev_sizes[None, :] - shared, 1)

    new_id: dict[int, int] = {}
    by_overlap = by_centroid = 0
    if fine and prev_ids:
        rows, cols = linear_sum_assignment(-jaccard)
        for i, j in zip(rows, cols, strict=True):
            if jaccard[i, j] >= MIN_JACCARD:
                new_id[fine[i].id] = prev_ids[j]
                by_overlap += 1
        left_new = [i for i, t in enumerate(fine) if t.id not in new_id]
        taken = set(new_id.values())
        left_old = [p for p in prev_ids if p not in taken]
        if left_new and left_old:
            centres = np.stack([_unit(vectors[fine[i].members].mean(axis=0)) for i in left_new])
            cosine = centres @ np.stack([previous.centroids[p] for p in left_old]).T
            for a, b in zip(*linear_sum_assignment(-cosine), strict=True):
                if cosine[a, b] >= MIN_CENTROID_COSINE:
                    new_id[fine[left_new[a]].id] = left_old[b]
                    by_centroid += 1
    next_id = max(previous.next_id, max(prev_ids, default=-1) + 1)
    for topic in fine:
        if topic.id not in new_id:
            new_id[topic.id] = next_id
            next_id += 1

    parents = {
        new_id[t.id]: [
            (prev_ids[j], int(shared[i, j]))
            for j in np.argsort(-shared[i])
            if shared[i, j] > 0 and shared[i, j] >= PARENT_SHARE * t.size
        ]
        for i, t in enumerate(fine)
    }
    renumbered, stayed = _keep_papers_in_place(
        _renumber(model, new_id), paper_ids, vectors, previous
    )
    kept = _kept_share(renumbered, paper_ids, previous)
    stats = {
        "matched_by_papers": by_overlap,
        "matched_by_centroid": by_centroid,
        "new_topics": len(fine) - by_overlap - by_centroid,
        "papers_keeping_topic_id": kept,
        "papers_kept_in_previous_topic": stayed,
    }
    return Carried(renumbered, parents, next_id, stats)


def _renumber(model: TopicModel, new_id: dict[int, int]) -> TopicModel:
    mapping = {**new_id, NOISE_TOPIC: NOISE_TOPIC}
    assignments = np.array([mapping[int(a)] for a in model.assignments], dtype=np.int32)
    topics = [Topic(mapping[t.id], t.label, t.keywords, t.members, t.name) for t in model.topics]
    groups = [
        TopicGroup(g.id, g.label, g.keywords, sorted(mapping[c] for c in g.children), g.name)
        for g in model.groups
    ]
    hdbscan_to_topic = {k: mapping[v] for k, v in model.hdbscan_to_topic.items()}
    return replace(
        model,
        assignments=assignments,
        topics=topics,
        groups=groups,
        hdbscan_to_topic=hdbscan_to_topic,
    )


def _keep_papers_in_place(
    model: TopicModel,
    paper_ids: list[str],
    vectors: npt.NDArray[np.float32],
    previous: PreviousTopics,
) -> tuple[TopicModel, int]:
    """Papers near their previous topic stay in it (see ``keep_previous_topics``); the topics
    they leave and join list their members afresh. Returns the model and how many stayed."""
    if not model.params.assign_outliers:  # raw HDBSCAN output asked for: left as fitted
        return model, 0
    outliers = (
        model.outliers
        if model.outliers is not None
        else np.zeros(len(model.assignments), dtype=np.bool_)
    )
    before = np.array(
        [previous.topic_of.get(paper, NOISE_TOPIC) for paper in paper_ids], dtype=np.int32
    )
    kept = keep_previous_topics(
        vectors,
        model.assignments,
        outliers,
        model.confidence,
        before,
        model.params.umap_neighbors,
    )
    if not len(kept.moved):
        return model, 0
    touched = set(model.assignments[kept.moved].tolist()) | set(
        kept.assignments[kept.moved].tolist()
    )
    topics = [
        replace(t, members=ordered_members(np.flatnonzero(kept.assignments == t.id), vectors))
        if t.id in touched
        else t
        for t in model.topics
    ]
    log.info("topics: %d papers kept the topic they had in the previous build", len(kept.moved))
    stayed = replace(model, assignments=kept.assignments, topics=topics, confidence=kept.confidence)
    return stayed, len(kept.moved)


def _kept_share(model: TopicModel, paper_ids: list[str], previous: PreviousTopics) -> float:
    """Of the papers clustered before whose old topic still exists, the share keeping its id."""
    alive = {t.id for t in model.topics if t.id != NOISE_TOPIC}
    eligible = kept = 0
    for row, topic in enumerate(model.assignments.tolist()):
        old = previous.topic_of.get(paper_ids[row])
        if old is None or old not in alive:
            continue
        eligible += 1
        kept += int(topic == old)
    return round(kept / eligible, 4) if eligible else 1.0
