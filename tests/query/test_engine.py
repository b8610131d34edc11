from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.artifacts import LEXICAL, current_build_dir, read_manifest
from service.embed.backends import Embedder
from service.errors import BuildDamaged, InvalidInput, NotFound
from service.query.engine import Engine
from service.schemas import MAX_K, NOISE_TOPIC, Hit, PaperFilter
from service.search.fusion import FusionParams, Mode
from tests.helpers import make_settings


def test_similar_excludes_the_paper_itself(engine: Engine) -> None:
    paper_id = engine.topics()[0].representative[0].id
    hits = engine.similar(paper_id, k=10)
    assert len(hits) == 10
    assert paper_id not in {h.id for h in hits}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_finds_the_paper_by_its_title(engine: Engine) -> None:
    hits = engine.search("Sinkhorn Distance Minimization for Knowledge Distillation", k=3)
    assert hits[0].title == "Sinkhorn Distance Minimization for Knowledge Distillation"
    assert hits[0].score > hits[1].score


def test_pasted_abstract_finds_its_paper(engine: Engine) -> None:
    paper = engine.paper(engine.topics()[1].representative[0].id)
    hits = engine.search(f"{paper.title}. {paper.abstract}", k=2)
    assert hits[0].id == paper.id
    assert hits[0].score > 0.99


def test_search_by_meaning(engine: Engine) -> None:
    hits = engine.search("making language models follow human preferences", k=5)
    text = " ".join(h.title.lower() for h in hits)
    assert "preference" in text or "alignment" in text or "align" in text


@pytest.mark.parametrize("k", [0, -1, MAX_K + 1])
def test_k_out_of_bounds(engine: Engine, k: int) -> None:
    with pytest.raises(InvalidInput):
        engine.similar(engine.topics()[0].representative[0].id, k=k)


@pytest.mark.parametrize("text", ["", "   ", "x" * 20_000])
def test_bad_query_text(engine: Engine, text: str) -> None:
    with pytest.raises(InvalidInput):
        engine.search(text)


def test_unknown_ids(engine: Engine) -> None:
    with pytest.raises(NotFound):
        engine.paper("no-such-paper")
    with pytest.raises(NotFound):
        engine.similar("no-such-paper")
    with pytest.raises(NotFound):
        engine.topic(12345)


def test_topics_partition_the_corpus(engine: Engine) -> None:
    topics = engine.topics()
    assert sum(t.size for t in topics) == engine.size == 115
    assert topics[-1].id == NOISE_TOPIC or all(t.id >= 0 for t in topics)
    sizes = [t.size for t in topics if t.id >= 0]
    assert sizes == sorted(sizes, reverse=True)
    points = engine.map_points()
    for topic in topics:
        assert points.topic.count(topic.id) == topic.size


def test_bundled_corpus_topics_read_sensibly(engine: Engine) -> None:
    """The themes a reader sees in the 115 trending papers each get a topic of their own."""
    labels = [" ".join(t.keywords) for t in engine.topics() if t.id >= 0]
    expected: dict[str, Callable[[str], bool]] = {
        "knowledge distillation": lambda s: "teacher" in s or "knowledge" in s,
        "one-step diffusion": lambda s: "one-step" in s or ("diffusion" in s and "distill" in s),
        "preference / alignment": lambda s: "preference" in s or "alignment" in s,
        "multimodal models": lambda s: "multimodal" in s or "visual" in s,
        "reinforcement learning": lambda s: "reward" in s or "rl" in s.split() or "policy" in s,
    }
    missing = [name for name, found in expected.items() if not any(found(s) for s in labels)]
    assert not missing, f"no topic for {missing}; labels: {labels}"


def test_topic_detail_lists_members_centre_first(engine: Engine) -> None:
    topic = engine.topic(0, limit=3)
    assert len(topic.papers) == 3
    assert topic.papers[0] == topic.representative[0]


def test_paper_has_topic_label(engine: Engine) -> None:
    ref = engine.topics()[0].representative[0]
    paper = engine.paper(ref.id)
    assert paper.title == ref.title
    assert paper.topic_id == 0
    assert paper.abstract


def test_each_mode_returns_its_score_parts(engine: Engine) -> None:
    query = "Sinkhorn distance for knowledge distillation"
    dense = engine.search(query, k=5, mode="dense")
    assert all(h.dense_score == h.score and h.lexical_score is None for h in dense)
    lexical = engine.search(query, k=5, mode="lexical")
    assert all(h.lexical_score == h.score and h.dense_score is None for h in lexical)
    assert lexical[0].title == "Sinkhorn Distance Minimization for Knowledge Distillation"
    hybrid = engine.search(query, k=5, mode="hybrid")
    assert all(h.dense_score is not None and h.lexical_score is not None for h in hybrid)
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)
    assert hybrid[0].title == "Sinkhorn Distance Minimization for Knowledge Distillation"


def test_rrf_and_weighted_fusion_both_rank(engine: Engine) -> None:
    query = "one-step diffusion distillation"
    rrf = engine.search(query, k=10, fusion=FusionParams(method="rrf"))
    weighted = engine.search(query, k=10, fusion=FusionParams(method="weighted"))
    assert rrf[0].score <= 2 / 61 and weighted[0].score <= 1.0
    assert {h.id for h in rrf[:3]} & {h.id for h in weighted[:3]}


def test_unknown_mode_is_invalid(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="mode must be one of"):
        engine.search("diffusion", mode="fuzzy")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_hidden_papers_are_never_returned(built_dir: Path, embedder: Embedder, mode: Mode) -> None:
    build = current_build_dir(make_settings(built_dir).builds_dir)
    assert build is not None
    engine = Engine(build, embedder)  # its own engine: hiding must not leak into other tests
    query = "diffusion models sampling in few steps"
    before = engine.search(query, k=10, mode=mode)
    hidden = {h.id for h in before[:4]}
    assert engine.hide(hidden) == 4
    after = engine.search(query, k=10, mode=mode)
    assert len(after) == 10
    assert not hidden & {h.id for h in after}
    if mode != "hybrid":  # hybrid normalises over its candidates, which hiding changes
        assert [h.id for h in after[:6]] == [h.id for h in before[4:10]]
    engine.close()


def test_lexical_search_needs_no_model(built_dir: Path) -> None:
    build = current_build_dir(make_settings(built_dir).builds_dir)
    assert build is not None
    engine = Engine(build, None)
    assert engine.search("hallucination", k=3, mode="lexical")
    with pytest.raises(InvalidInput, match="without an embedding model"):
        engine.search("hallucination", k=3, mode="hybrid")
    engine.close()


def test_build_without_lexical_index_falls_back_to_dense(
    built_copy: Path, embedder: Embedder
) -> None:
    build = current_build_dir(make_settings(built_copy).builds_dir)
    assert build is not None
    shutil.rmtree(build / LEXICAL)  # as a build made before lexical search (and checksums)
    manifest = read_manifest(build).model_copy(update={"checksums": {}})
    (build / "manifest.json").write_text(manifest.model_dump_json(), encoding="utf-8")
    engine = Engine(build, embedder)
    hits = engine.search("knowledge distillation", k=5)
    assert hits == engine.search("knowledge distillation", k=5, mode="dense")
    with pytest.raises(InvalidInput, match="no lexical index"):
        engine.search("knowledge distillation", mode="lexical")
    engine.close()


def test_damaged_lexical_index_is_refused(built_copy: Path, embedder: Embedder) -> None:
    build = current_build_dir(make_settings(built_copy).builds_dir)
    assert build is not None
    vocabulary = build / LEXICAL / "vocab.index.json"
    vocabulary.write_text(vocabulary.read_text(encoding="utf-8")[:100], encoding="utf-8")
    with pytest.raises(BuildDamaged, match="damaged"):
        Engine(build, embedder)


def test_every_served_paper_has_a_topic_or_is_flagged_far(engine: Engine) -> None:
    """HDBSCAN's outliers are served in their most likely topic, flagged, with a confidence;
    at most 10% of the bundled corpus is left unclustered, all of it outliers."""
    points = engine.map_points()
    n = len(points.ids)
    assert len(points.outlier) == len(points.confidence) == n
    unclustered = [i for i in range(n) if points.topic[i] == NOISE_TOPIC]
    assert len(unclustered) <= 0.1 * n
    assert all(points.outlier[i] and points.confidence[i] == 0 for i in unclustered)
    assert all(0 <= c <= 1 for c in points.confidence)
    assert engine.manifest.outlier_share is not None
    assert engine.manifest.noise_share == pytest.approx(len(unclustered) / n, abs=1e-3)
    # the API's answers carry the same flags as the map
    row = next(i for i in range(n) if points.outlier[i] and points.topic[i] != NOISE_TOPIC)
    paper = engine.paper(points.ids[row])
    assert (paper.topic_id, paper.outlier) == (points.topic[row], True)
    assert paper.confidence == pytest.approx(points.confidence[row], abs=1e-3)
    members = engine.topic(paper.topic_id, limit=1000).papers
    (ref,) = [p for p in members if p.id == paper.id]  # topic members include assigned outliers
    assert ref.outlier is True and ref.confidence == pytest.approx(paper.confidence, abs=1e-3)
    hit = engine.search(paper.title, 1)[0]
    assert (hit.id, hit.outlier) == (paper.id, True)
    assert hit.confidence == pytest.approx(paper.confidence, abs=1e-3)


# -- filters and paging (one PaperFilter for search, like-this and recommend) -----------------


def _median_day(engine: Engine) -> str:
    days = sorted(d for d in engine.view.all_dates() if d)
    return days[len(days) // 2]


def _matches(hit: Hit, filters: PaperFilter) -> bool:
    if filters.since and (hit.date is None or hit.date < filters.since):
        return False
    if filters.until and (hit.date is None or hit.date > filters.until):
        return False
    if filters.topics and hit.topic_id not in filters.topics:
        return False
    return not filters.categories or any(
        c in filters.categories or c.split(".")[0] in filters.categories for c in hit.categories
    )


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_search_filters_apply_before_ranking(dated_engine: Engine, mode: Mode) -> None:
    engine = dated_engine
    since = _median_day(engine)
    filters = PaperFilter(since=since)
    matching = len(engine.view.allowed(filters))  # type: ignore[arg-type]
    assert 10 < matching < engine.size
    hits = engine.search("language models", k=10, mode=mode, filters=filters)
    assert hits and all(_matches(h, filters) for h in hits)
    if mode != "lexical":  # dense scores every allowed paper: a full page always comes back
        assert len(hits) == 10
        everything = engine.search("language models", k=MAX_K, mode=mode, filters=filters)
        assert len(everything) == min(MAX_K, matching)


def test_similar_filters_and_pages(engine: Engine) -> None:
    paper_id = engine.topics()[0].representative[0].id
    topic = engine.topics()[1].id
    hits = engine.similar(paper_id, k=5, filters=PaperFilter(topics=[topic]))
    assert len(hits) == 5 and {h.topic_id for h in hits} == {topic}
    assert paper_id not in {h.id for h in hits}
    first, second = engine.similar(paper_id, k=5), engine.similar(paper_id, k=5, offset=5)
    assert [h.id for h in engine.similar(paper_id, k=10)] == [h.id for h in first + second]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_search_pages_continue_each_other(engine: Engine, mode: Mode) -> None:
    whole = engine.search("graph neural networks", k=20, mode=mode)
    pages = engine.search("graph neural networks", k=10, mode=mode) + engine.search(
        "graph neural networks", k=10, mode=mode, offset=10
    )
    assert [h.id for h in pages] == [h.id for h in whole]


def test_a_filter_matching_nothing_gives_no_results(engine: Engine) -> None:
    nothing = PaperFilter(categories=["no.such.category"])
    assert engine.search("transformers", filters=nothing) == []
    paper_id = engine.topics()[0].representative[0].id
    assert engine.similar(paper_id, filters=nothing) == []
    with pytest.raises(InvalidInput):
        engine.search("transformers", offset=-1)


@given(
    since=st.sampled_from([None, "2023-01-01", "2024-06-01", "2025-01-01"]),
    until=st.sampled_from([None, "2024-03-31", "2024-12-31", "2026-12-31"]),
    categories=st.lists(st.sampled_from(["cs", "cs.CL", "cs.CV", "cs.LG", "stat"]), max_size=2),
    mode=st.sampled_from(["dense", "hybrid", "lexical"]),
)
@settings(max_examples=25)
def test_every_result_matches_the_filter(
    dated_engine: Engine,
    since: str | None,
    until: str | None,
    categories: list[str],
    mode: Mode,
) -> None:
    engine = dated_engine
    filters = PaperFilter(since=since, until=until, categories=categories)
    allowed = engine.view.allowed(filters)
    hits = engine.search("learning", k=20, mode=mode, filters=filters)
    assert all(_matches(h, filters) for h in hits)
    if mode == "dense" and allowed is not None:
        assert len(hits) == min(20, len(allowed))
