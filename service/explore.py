"""Exploring topics: the coarse level, topics over time, topics by query, likely duplicates.

Functions over a served :class:`Engine`, like :mod:`service.recommend`.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import Counter

import numpy as np
import numpy.typing as npt

from service.duplicates import NEIGHBOURS
from service.engine import BLANK, MAX_QUERY_CHARS, Engine
from service.errors import InvalidInput
from service.schemas import (
    NOISE_TOPIC,
    DuplicatePair,
    Hit,
    MonthCount,
    TopicGroupSummary,
    TopicMatch,
    TopicTimeline,
)
from service.topics import REPRESENTATIVES

_lock = threading.Lock()
_centroids: weakref.WeakKeyDictionary[Engine, tuple[list[int], npt.NDArray[np.float32]]] = (
    weakref.WeakKeyDictionary()
)


def coarse_topics(engine: Engine) -> list[TopicGroupSummary]:
    """The coarse level: groups of fine topics (see ``topics.group_topics``), largest first.
    Small corpora (under 4 topics) have no coarse level: each topic is its own group."""
    fine = {t.id: t for t in engine.topics()}
    groups = engine.groups or [
        {"id": t.id, "label": t.label, "keywords": t.keywords, "children": [t.id]}
        for t in fine.values()
        if t.id != NOISE_TOPIC
    ]
    out = []
    for group in groups:
        children = [c for c in group["children"] if c in fine]
        if not children:
            continue
        leaders = [r for c in children for r in fine[c].representative[:1]]
        out.append(
            TopicGroupSummary(
                id=group["id"],
                label=group["label"],
                keywords=group["keywords"],
                size=sum(fine[c].size for c in children),
                representative=leaders[:REPRESENTATIVES],
                subtopics=children,
            )
        )
    return sorted(out, key=lambda g: (-g.size, g.id))


def timeline(engine: Engine, topic_id: int) -> TopicTimeline:
    """Papers of a topic per month (every month between the first and last listed)."""
    rows = engine.topic_rows(topic_id)
    dates = engine.dates()
    months = Counter(day[:7] for r in rows if (day := dates[r]))
    undated = sum(1 for r in rows if not dates[r])
    listed: list[MonthCount] = []
    if months:
        year, month = map(int, min(months).split("-"))
        last = max(months)
        while (current := f"{year:04d}-{month:02d}") <= last:
            listed.append(MonthCount(month=current, papers=months.get(current, 0)))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return TopicTimeline(
        id=topic_id, label=engine.topic_label(topic_id), months=listed, undated=undated
    )


def _topic_centroids(engine: Engine) -> tuple[list[int], npt.NDArray[np.float32]]:
    """Unit centroids of the build's topics, computed once per engine."""
    with _lock:
        if engine not in _centroids:
            ids, rows = [], []
            for topic_id, members in engine.build_topic_rows().items():
                if topic_id != NOISE_TOPIC and members:
                    ids.append(topic_id)
                    rows.append(engine.vectors_at(members).mean(axis=0))
            matrix = np.vstack(rows) if rows else np.zeros((0, engine.manifest.model.dim))
            matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
            _centroids[engine] = (ids, matrix.astype(np.float32))
        return _centroids[engine]


def find_topics(engine: Engine, text: str, k: int = 10) -> list[TopicMatch]:
    """Topics whose centroid is closest in meaning to free text."""
    text = text.strip(BLANK)
    if not text or len(text) > MAX_QUERY_CHARS:
        raise InvalidInput(f"query text must have 1 to {MAX_QUERY_CHARS} characters")
    if engine.embedder is None:
        raise InvalidInput("this engine was opened without an embedding model")
    ids, centroids = _topic_centroids(engine)
    scores = centroids @ engine.embedder.encode([text])[0]
    sizes = {t.id: t for t in engine.topics()}
    ranked = [i for i in np.argsort(-scores, kind="stable") if ids[i] in sizes][:k]
    return [
        TopicMatch(
            id=ids[i],
            label=sizes[ids[i]].label,
            keywords=sizes[ids[i]].keywords,
            size=sizes[ids[i]].size,
            score=round(float(scores[i]), 6),
        )
        for i in ranked
    ]


def duplicates_of(engine: Engine, paper_id: str, threshold: float) -> list[Hit]:
    """Served papers at least ``threshold`` similar to this one (live additions included)."""
    return [h for h in engine.similar(paper_id, NEIGHBOURS * 4) if h.score >= threshold]


def duplicate_report(engine: Engine, limit: int) -> list[DuplicatePair]:
    """The build's likely duplicate pairs (most similar first), deleted papers left out."""
    path = engine.build_dir / "duplicates.json"
    if not path.is_file():
        return []
    pairs = json.loads(path.read_text(encoding="utf-8"))
    shown = [p for p in pairs if len(engine.visible([p["a"], p["b"]])) == 2][:limit]
    out = []
    for pair in shown:
        a, b = engine.refs([pair["a"], pair["b"]])
        out.append(DuplicatePair(a=a, b=b, score=pair["score"]))
    return out
