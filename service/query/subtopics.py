"""Sub-topics on request: a topic split by HDBSCAN within its own papers, kept in the store.

``POST /topics/{id}/split`` (:func:`split_topic`) clusters the topic's papers (their embeddings,
reduced by PCA to one dimension per ten papers, 2 to :data:`SPLIT_DIMENSIONS`, where density
means something for a few dozen points) with HDBSCAN (leaf selection; the smallest sub-topic
size is lowered until at least two sub-topics appear). Papers HDBSCAN calls noise join the
sub-topic with the nearest centroid, so every member is in one. Sub-topics are named like topics
(:func:`service.topics.labels.topic_labels`, terms counted over the topic's papers).

The split is stored in the papers database keyed by paper ids, not by the build: whenever a
topic of the served build shares at least :data:`MIN_JACCARD` of its papers with a stored split
(an incremental build keeps topic ids and adds papers; a full refit keeps ids where lineage
allows, and the papers decide either way), ``GET /topics/{id}`` lists that split's sub-topics
with their ids; its new papers join the sub-topic with the nearest centroid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.errors import InvalidInput
from service.query.engine import Engine
from service.query.view import BuildView
from service.schemas import NOISE_TOPIC, Subtopic, TopicDetail, embedding_text
from service.store import Store, StoredSplit
from service.topics.labels import clean_for_labels, count_terms, topic_labels

MIN_PAPERS = 6
"""A topic needs at least this many papers to be split."""
SPLIT_DIMENSIONS = 10
MIN_JACCARD = 0.5
"""A stored split applies to a topic holding at least this Jaccard share of the same papers."""
LISTED = 20
"""Papers listed per sub-topic."""


def topic_detail(engine: Engine, db_path: Path | None, topic_id: int, limit: int) -> TopicDetail:
    """The topic as :meth:`Engine.topic` gives it, with its stored sub-topics if it was split."""
    detail = engine.topic(topic_id, limit)
    if db_path is None or not db_path.is_file() or topic_id == NOISE_TOPIC:
        return detail
    with Store(db_path) as store:
        splits = store.splits()
    subtopics = applied_subtopics(engine.view, topic_id, splits)
    return detail.model_copy(update={"subtopics": subtopics})


def split_topic(engine: Engine, db_path: Path, topic_id: int, limit: int = 100) -> TopicDetail:
    """Split a topic into sub-topics, store them (replacing a split of the same papers) and
    return the topic with them."""
    view = engine.view
    if topic_id == NOISE_TOPIC:
        raise InvalidInput("the unclustered papers are no topic to split")
    topic = view.topic(topic_id)  # NotFound for an unknown id
    rows = view.members(topic)
    if len(rows) < MIN_PAPERS:
        raise InvalidInput(f"topic {topic_id} has {len(rows)} papers; splitting needs {MIN_PAPERS}")
    vectors = view.vectors_at(rows)
    labels = cluster_within(vectors)
    if labels is None:
        raise InvalidInput(f"topic {topic_id} has no sub-structure HDBSCAN can find")
    ids = sorted(set(labels.tolist()))
    names = topic_labels(
        count_terms(_texts(view, rows)),
        labels,
        ids,
        vectors,
        view.embedder.encode if view.embedder is not None else None,
        parents=[topic.name] if topic.name else (),
    )
    papers = {_paper_id(view, r): int(s) for r, s in zip(rows, labels, strict=True)}
    with Store(db_path) as store:
        replaced = [s.id for s in store.splits() if _jaccard(s, set(papers)) >= MIN_JACCARD]
        store.save_split(
            topic_id,
            engine.manifest.build_id,
            datetime.now(UTC).isoformat(timespec="seconds"),
            {s: (names[s].name, names[s].keywords) for s in ids},
            papers,
            replaced,
        )
    return topic_detail(engine, db_path, topic_id, limit)


def cluster_within(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.int32] | None:
    """Sub-topic of each row (0 = largest), or None when HDBSCAN finds fewer than two."""
    import hdbscan
    from sklearn.decomposition import PCA

    n = len(vectors)
    if float(np.ptp(vectors, axis=0).max(initial=0.0)) < 1e-6:
        return None  # one point repeated: PCA of it is rounding noise, nothing to split
    dims = int(np.clip(n // 10, 2, SPLIT_DIMENSIONS))  # density needs ~10 points a dimension
    space = PCA(dims, random_state=0).fit_transform(vectors).astype(np.float64)
    start = max(3, round(np.sqrt(n)))
    for size in sorted({start, max(3, start // 2), 3}, reverse=True):
        raw = hdbscan.HDBSCAN(
            min_cluster_size=size,
            min_samples=max(1, size // 3),
            cluster_selection_method="leaf",
        ).fit_predict(space)
        found = sorted(set(raw.tolist()) - {NOISE_TOPIC})
        if len(found) >= 2:
            return _assign_noise(vectors, raw.astype(np.int32), found)
    return None


def _assign_noise(
    vectors: npt.NDArray[np.float32], raw: npt.NDArray[np.int32], found: list[int]
) -> npt.NDArray[np.int32]:
    """Noise to the nearest centroid; then ids renumbered by size, largest first."""
    centroids = _unit(np.stack([vectors[raw == c].mean(axis=0) for c in found]))
    noise = raw == NOISE_TOPIC
    out = raw.copy()
    if noise.any():
        out[noise] = np.asarray(found)[np.argmax(vectors[noise] @ centroids.T, axis=1)]
    sizes = {c: int(np.sum(out == c)) for c in found}
    order = {c: i for i, c in enumerate(sorted(found, key=lambda c: (-sizes[c], c)))}
    return np.array([order[int(c)] for c in out], dtype=np.int32)


def applied_subtopics(view: BuildView, topic_id: int, splits: list[StoredSplit]) -> list[Subtopic]:
    """The sub-topics of the stored split that best matches this topic's papers (none below
    :data:`MIN_JACCARD`); members the split never saw join the nearest sub-topic."""
    rows = view.members(view.topic(topic_id))
    ids = [_paper_id(view, r) for r in rows]
    present = set(ids)
    scored = [(_jaccard(s, present), s) for s in splits]  # newest first: ties go to the newest
    best = max(scored, key=lambda js: js[0], default=(0.0, None))
    split = best[1]
    if split is None or best[0] < MIN_JACCARD:
        return []
    known = [split.paper_subtopic.get(i) for i in ids]
    vectors = view.vectors_at(rows)
    kept = sorted({s for s in known if s is not None and s in split.subtopics})
    centroids = _unit(np.stack([vectors[[k == s for k in known]].mean(axis=0) for s in kept]))
    of_row = np.array(
        [
            s if s is not None and s in split.subtopics else kept[int(np.argmax(centroids @ v))]
            for s, v in zip(known, vectors, strict=True)
        ]
    )
    out = []
    for s in kept:
        members = np.flatnonzero(of_row == s)
        closeness = vectors[members] @ centroids[kept.index(s)]
        ordered = [rows[int(members[i])] for i in np.argsort(-closeness, kind="stable")]
        name, keywords = split.subtopics[s]
        out.append(
            Subtopic(
                id=s,
                name=name,
                keywords=keywords,
                size=len(members),
                papers=view.refs(ordered[:LISTED]),
            )
        )
    return out


def _jaccard(split: StoredSplit, papers: set[str]) -> float:
    stored = split.paper_subtopic.keys()
    union = len(stored | papers)
    return len(stored & papers) / union if union else 0.0


def _unit(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


def _paper_id(view: BuildView, row: int) -> str:
    return view.ids[row] if row < view.size else view.live.papers[row - view.size].id


def _texts(view: BuildView, rows: list[int]) -> list[str]:
    built = view.papers.papers_at([r for r in rows if r < view.size])
    papers = [built[r] if r < view.size else view.live.papers[r - view.size] for r in rows]
    return [clean_for_labels(embedding_text(p.title, p.abstract)) for p in papers]
