"""Exploring topics: summaries and detail, the coarse level, topics over time and trending
topics, topics by query, likely duplicates. Functions of a
:class:`~service.query.view.BuildView`, called by :class:`~service.query.engine.Engine`.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter

import numpy as np
import numpy.typing as npt

from service.artifacts import TopicEntry
from service.errors import InvalidInput
from service.query.view import BuildView
from service.sanitize import latest_date, month_index, month_text
from service.schemas import (
    BLANK,
    MAX_QUERY_CHARS,
    MAX_TREND_MONTHS,
    NOISE_TOPIC,
    DuplicatePair,
    MonthCount,
    TopicDetail,
    TopicGroupSummary,
    TopicLink,
    TopicMatch,
    TopicSummary,
    TopicTimeline,
    TopicTrend,
)
from service.search.duplicates import NEIGHBOURS
from service.topics.model import REPRESENTATIVES

DUPLICATE_DEPTH = NEIGHBOURS * 4
"""Neighbours searched for a paper's likely duplicates."""

_lock = threading.Lock()
_centroids: weakref.WeakKeyDictionary[
    BuildView, tuple[dict[int, TopicEntry], list[int], npt.NDArray[np.float32]]
] = weakref.WeakKeyDictionary()


def _summary(view: BuildView, topic: TopicEntry) -> TopicSummary:
    members = view.members(topic)
    return TopicSummary(
        id=topic.id,
        label=topic.label,
        name=topic.name or topic.label,
        keywords=topic.keywords,
        size=len(members),
        representative=view.refs(members[:REPRESENTATIVES]),
        user_named=topic.id in view.user_named,
    )


def topic_summaries(view: BuildView) -> list[TopicSummary]:
    """All topics, largest first; the unclustered papers (id -1) come last."""
    ordered = sorted(
        view.topics.values(), key=lambda t: (t.id == NOISE_TOPIC, -len(t.members), t.id)
    )
    return [summary for summary in (_summary(view, t) for t in ordered) if summary.size]


def topic_detail(view: BuildView, topic_id: int, limit: int = 100) -> TopicDetail:
    topic = view.topic(topic_id)
    if limit < 1:
        raise InvalidInput("limit must be at least 1")
    children = [
        TopicLink(id=other.id, shared=shared)
        for other in view.topics.values()
        for parent, shared in other.parents
        if parent == topic_id and other.id != topic_id
    ]
    return TopicDetail(
        **_summary(view, topic).model_dump(),
        papers=view.refs(view.members(topic)[:limit]),
        previous_build=view.previous_build,
        parents=[TopicLink(id=parent, shared=shared) for parent, shared in topic.parents],
        children=children,
    )


def coarse_topics(view: BuildView) -> list[TopicGroupSummary]:
    """The coarse level: groups of fine topics (see ``topics.group_topics``), largest first.
    Small corpora (under 4 topics) have no coarse level: each topic is its own group."""
    fine = {t.id: t for t in topic_summaries(view)}
    groups = [(g.id, g.label, g.name or g.label, g.keywords, g.children) for g in view.groups] or [
        (t.id, t.label, t.name, t.keywords, [t.id]) for t in fine.values() if t.id != NOISE_TOPIC
    ]
    out = []
    for group_id, label, name, keywords, group_children in groups:
        children = [c for c in group_children if c in fine]
        if not children:
            continue
        leaders = [r for c in children for r in fine[c].representative[:1]]
        out.append(
            TopicGroupSummary(
                id=group_id,
                label=label,
                name=name,
                keywords=keywords,
                size=sum(fine[c].size for c in children),
                representative=leaders[:REPRESENTATIVES],
                subtopics=children,
            )
        )
    return sorted(out, key=lambda g: (-g.size, g.id))


def timeline(view: BuildView, topic_id: int) -> TopicTimeline:
    """Papers of a topic per month, every month between its first and last dated paper listed.

    Months are counted as numbers from the papers' valid dates, so the range is the data's own:
    a date no ingest would store now (data from before dates were checked) counts as undated.
    """
    rows = view.members(view.topic(topic_id))
    dates = view.all_dates()
    latest = latest_date()
    months = Counter(m for r in rows if (m := month_index(dates[r], latest)) is not None)
    span = range(min(months), max(months) + 1) if months else range(0)
    listed = [MonthCount(month=month_text(m), papers=months[m]) for m in span]
    return TopicTimeline(
        id=topic_id,
        label=view.topic_label(topic_id),
        months=listed,
        undated=len(rows) - sum(months.values()),
    )


def trending(view: BuildView, months: int) -> list[TopicTrend]:
    """Topics by recent growth: papers per month in the last ``months`` months (ending with the
    newest served paper's month) against papers per month in the corpus's earlier months.

    Whole months, as :func:`timeline` counts them, so the chart shows the same numbers; a window
    longer than the corpus is cut to it. Topics without earlier papers (growth None) come first;
    ties go to the topic with more recent papers. Undated and unclustered papers are left out.
    """
    if not 1 <= months <= MAX_TREND_MONTHS:
        raise InvalidInput(f"months must be between 1 and {MAX_TREND_MONTHS}, got {months}")
    dates, latest = view.all_dates(), latest_date()
    served = view.visible(list(range(len(dates))))
    month_of = {r: m for r in served if (m := month_index(dates[r], latest)) is not None}
    if not month_of:
        return []
    first, last = min(month_of.values()), max(month_of.values())
    window = min(months, last - first + 1)
    before = last - first + 1 - window
    start = last - window + 1
    trends = []
    for topic in view.topics.values():
        dated = [month_of[r] for r in view.members(topic) if r in month_of]
        if topic.id == NOISE_TOPIC or not dated:
            continue
        recent = sum(1 for m in dated if m >= start)
        earlier = len(dated) - recent
        recent_rate, earlier_rate = recent / window, (earlier / before if before else 0.0)
        trends.append(
            TopicTrend(
                id=topic.id,
                name=view.topic_label(topic.id),
                recent=recent,
                earlier=earlier,
                share=round(recent / len(dated), 4),
                recent_rate=round(recent_rate, 4),
                earlier_rate=round(earlier_rate, 4),
                growth=round(recent_rate / earlier_rate, 4) if earlier else None,
            )
        )
    return sorted(trends, key=lambda t: (t.growth is not None, -(t.growth or 0.0), -t.recent, t.id))


def _topic_centroids(view: BuildView) -> tuple[list[int], npt.NDArray[np.float32]]:
    """Unit centroids of the served topics, computed once per view and curation."""
    with _lock:
        if view not in _centroids or _centroids[view][0] is not view.topics:  # curated since
            ids, rows = [], []
            for topic in view.topics.values():
                if topic.id != NOISE_TOPIC and topic.members:
                    ids.append(topic.id)
                    rows.append(view.vectors_at(topic.members).mean(axis=0))
            matrix = np.vstack(rows) if rows else np.zeros((0, view.manifest.model.dim))
            matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
            _centroids[view] = (view.topics, ids, matrix.astype(np.float32))
        return _centroids[view][1:]


def find_topics(view: BuildView, text: str, k: int = 10) -> list[TopicMatch]:
    """Topics whose centroid is closest in meaning to free text."""
    text = text.strip(BLANK)
    if not text or len(text) > MAX_QUERY_CHARS:
        raise InvalidInput(f"query text must have 1 to {MAX_QUERY_CHARS} characters")
    if view.queries is None:
        raise InvalidInput("this engine was opened without an embedding model")
    ids, centroids = _topic_centroids(view)
    scores = centroids @ view.queries.encode([text])[0]
    sizes = {t.id: t for t in topic_summaries(view)}
    ranked = [i for i in np.argsort(-scores, kind="stable") if ids[i] in sizes][:k]
    return [
        TopicMatch(
            id=ids[i],
            label=sizes[ids[i]].label,
            name=sizes[ids[i]].name,
            keywords=sizes[ids[i]].keywords,
            size=sizes[ids[i]].size,
            score=round(float(scores[i]), 6),
        )
        for i in ranked
    ]


def duplicate_report(view: BuildView, limit: int) -> list[DuplicatePair]:
    """The build's likely duplicate pairs (most similar first), deleted papers left out."""
    shown = [p for p in view.duplicate_pairs if len(view.visible([p[0], p[1]])) == 2][:limit]
    out = []
    for row_a, row_b, score in shown:
        a, b = view.refs([row_a, row_b])
        out.append(DuplicatePair(a=a, b=b, score=score))
    return out
