"""Topic levels, timelines, trending topics, topics by query, and likely duplicates."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from service.embed.backends import Embedder
from service.embed.passages import load_windowing
from service.errors import InvalidInput, NotFound
from service.pipeline.pipeline import run_build
from service.query.engine import Engine
from service.query.live import LiveAdditions
from service.schemas import NOISE_TOPIC, Paper
from service.store import Store
from tests.helpers import TREND_DATES, make_settings

BUNDLED_MONTH = "2025-03"
"""The month of the day the bundled corpus's seed page listed its papers (2025-03-14)."""


def _months(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` (YYYY-MM), as timelines list them."""
    out, (year, month) = [], map(int, first.split("-"))
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def test_coarse_level_covers_every_clustered_topic_once(engine: Engine) -> None:
    fine = {t.id: t.size for t in engine.topics() if t.id != NOISE_TOPIC}
    coarse = engine.coarse_topics()
    assert 1 < len(coarse) < len(fine)
    children = [c for g in coarse for c in g.subtopics]
    assert sorted(children) == sorted(fine)
    for group in coarse:
        assert group.size == sum(fine[c] for c in group.subtopics)
    assert [g.size for g in coarse] == sorted((g.size for g in coarse), reverse=True)


def test_topics_by_query_rank_the_matching_topic_first(engine: Engine) -> None:
    for topic in engine.topics()[:5]:
        if topic.id == NOISE_TOPIC:
            continue
        best = engine.find_topics(" ".join(topic.keywords), k=3)
        assert topic.id in [m.id for m in best], topic.label
    matches = engine.find_topics("knowledge distillation from a teacher to a student", k=100)
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    assert NOISE_TOPIC not in [m.id for m in matches]
    with pytest.raises(InvalidInput):
        engine.find_topics("   ")


def test_timeline_counts_papers_per_month(built_copy: Path, embedder: Embedder) -> None:
    engine = Engine(sorted((built_copy / "builds").glob("2*"))[-1], embedder)
    live = LiveAdditions(make_settings(built_copy).db_path, embedder)
    topic = engine.topics()[0]
    title, abstract = topic.representative[0].title, engine.paper(topic.representative[0].id)
    dated = [
        Paper(id=f"dated-{i}", title=f"{title} ({i})", abstract=abstract.abstract, date=day)
        for i, day in enumerate(["2025-11-03", "2026-01-20", "2026-01-02"])
    ]
    placed = live.add(engine, dated).papers
    topic_id = placed[0].topic_id
    assert topic_id != NOISE_TOPIC
    months = {m.month: m.papers for m in engine.timeline(topic_id).months}
    same_topic = [p for p, a in zip(dated, placed, strict=True) if a.topic_id == topic_id]
    expected = Counter(p.date[:7] for p in same_topic if p.date)
    expected[BUNDLED_MONTH] += len(engine.view.topic(topic_id).members)  # the page's one day
    assert list(months) == _months(BUNDLED_MONTH, max(expected))
    assert all(months[m] == expected.get(m, 0) for m in months)
    assert engine.timeline(topic_id).undated == 0  # every bundled paper carries its day
    with pytest.raises(NotFound):
        engine.timeline(9999)


def test_timelines_are_bounded_by_valid_dates(built_copy: Path, embedder: Embedder) -> None:
    """Dates stored before dates were checked (0000-00-00, 9999-12-31, 31/12/2025) count as
    undated: they never stretch the months listed (9999-12 once made 1.2 million of them)."""
    engine = Engine(sorted((built_copy / "builds").glob("2*"))[-1], embedder)
    live = LiveAdditions(make_settings(built_copy).db_path, embedder)
    topic = engine.topics()[0]
    seed = engine.paper(topic.representative[0].id)
    days = ["9999-12-31", "0000-00-00", "31/12/2025", "2025-13-45", "2025-11-03", "2026-01-20"]
    dated = [
        Paper(id=f"old-{i}", title=f"{seed.title} ({i})", abstract=seed.abstract, date=day)
        for i, day in enumerate(days)
    ]
    placed = live.add(engine, dated).papers
    for topic_id in {p.topic_id for p in placed}:
        timeline = engine.timeline(topic_id)
        here = [d for d, p in zip(days, placed, strict=True) if p.topic_id == topic_id]
        valid = {d[:7] for d in here if d in days[4:]}
        if engine.view.topic(topic_id).members:  # bundled papers: the page's one day
            valid.add(BUNDLED_MONTH)
        assert [m.month for m in timeline.months if m.papers] == sorted(valid)
        assert all(BUNDLED_MONTH <= m.month <= "2026-01" for m in timeline.months)
        assert timeline.undated == sum(1 for d in here if d in days[:4])
    trends = engine.trending(120)
    clustered = sum(1 for t in engine.topics() if t.id != NOISE_TOPIC for _ in range(t.size))
    assert sum(t.recent + t.earlier for t in trends) <= clustered  # bad dates never count


def test_trending_ranks_topics_by_recent_against_earlier_rate(
    built_copy: Path, embedder: Embedder
) -> None:
    engine = Engine(sorted((built_copy / "builds").glob("2*"))[-1], embedder)
    bundled = engine.trending(6)  # every bundled paper carries the one day its page listed it
    assert bundled and all(t.growth is None and t.earlier == 0 for t in bundled)
    clustered = [t for t in engine.topics() if t.id != NOISE_TOPIC]
    assert sum(t.recent for t in bundled) == sum(t.size for t in clustered)
    topics = [t for t in engine.topics() if t.id != NOISE_TOPIC][:3]
    view = engine.view
    dated, topic_of = [], {}
    for topic, (kind, days) in zip(topics, TREND_DATES.items(), strict=True):
        # the most confidently placed: placed again, they stay in the topic on any CPU (a
        # borderline paper may move when the runtime rounds in bf16)
        members = view.members(view.topic(topic.id))
        central = sorted(members, key=lambda row: -float(view.confidence[row]))[: len(days)]
        for row, day in zip(central, days, strict=True):
            dated.append(view.papers_at([row])[row].model_copy(update={"date": day}))
        topic_of[kind] = topic.id
    settings = make_settings(built_copy)  # papers embedded as the build and the server do
    live = LiveAdditions(settings.db_path, embedder, load_windowing(settings))
    placed = live.add(engine, dated)
    kept = {p.id for p in dated}  # the dated papers alone: the other bundled ones leave
    engine.hide([i for i in engine.paper_ids if i not in kept])
    # papers close to their topic's centre are placed back into it
    assert [p.topic_id for p in placed.papers] == [
        topic_of[kind] for kind, days in TREND_DATES.items() for _ in days
    ]

    def rows(months: int) -> list[tuple[int, int, int, float, float, float | None]]:
        return [
            (t.id, t.recent, t.earlier, t.recent_rate, t.earlier_rate, t.growth)
            for t in engine.trending(months)
        ]

    new, growing, shrinking = topic_of["new"], topic_of["growing"], topic_of["shrinking"]
    assert rows(3) == [  # 2025-04..06 against 2025-01..03; no earlier papers: first
        (new, 2, 0, 0.6667, 0.0, None),
        (growing, 3, 1, 1.0, 0.3333, 3.0),
        (shrinking, 1, 3, 0.3333, 1.0, 0.3333),
    ]
    assert [t.share for t in engine.trending(3)] == [1.0, 0.75, 0.25]
    assert engine.trending(3)[1].name == view.topic_label(growing)
    assert rows(1) == [  # 2025-06 against 5 months; equal growth: more recent papers first
        (growing, 2, 2, 2.0, 0.4, 5.0),
        (new, 1, 1, 1.0, 0.2, 5.0),
        (shrinking, 0, 4, 0.0, 0.8, 0.0),
    ]
    # a window longer than the corpus is cut to its 6 months: nothing is earlier
    assert {(t.id, t.recent, t.recent_rate, t.growth) for t in engine.trending(120)} == {
        (growing, 4, 0.6667, None),
        (shrinking, 4, 0.6667, None),
        (new, 2, 0.3333, None),
    }
    engine.hide([dated[0].id])  # the new topic's 2025-05-15 paper is deleted
    assert rows(3)[0] == (new, 1, 0, 0.3333, 0.0, None)
    for months in (0, 121):
        with pytest.raises(InvalidInput):
            engine.trending(months)


def test_a_copied_paper_is_reported_as_a_duplicate(built_copy: Path, embedder: Embedder) -> None:
    settings = make_settings(built_copy)
    with Store(settings.db_path) as store:
        original = next(paper for paper, _ in store.papers())
        copy = original.model_copy(update={"id": "copied-paper", "title": original.title + " v2"})
        store.add_live([copy], [])
    folder, manifest, _ = run_build(settings, lambda: embedder, progress=False)
    assert manifest.duplicates >= 1
    engine = Engine(folder, embedder)
    report = engine.duplicate_report(100)
    pair = {report[0].a.id, report[0].b.id}
    assert pair == {original.id, "copied-paper"} and report[0].score >= 0.95
    found = engine.duplicates_of(original.id, settings.duplicate_threshold)
    assert [h.id for h in found] == ["copied-paper"]
    vectors = engine.view.vectors_at(
        [engine.view.row_of(original.id), engine.view.row_of("copied-paper")]
    )
    assert float(np.dot(vectors[0], vectors[1])) == pytest.approx(report[0].score, abs=1e-5)
    paired = {i for p in report for i in (p.a.id, p.b.id)}
    loner = next(i for i in engine.paper_ids if i not in paired)
    assert engine.duplicates_of(loner, settings.duplicate_threshold) == []
    engine.hide(["copied-paper"])
    assert all("copied-paper" not in (p.a.id, p.b.id) for p in engine.duplicate_report(100))
