"""Papers like these: seeds by id or text, negatives, filters inside the search, reasons."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.errors import NotFound
from service.query.engine import Engine
from service.schemas import PaperSeed, RecommendRequest, TextSeed


def _seed_topic(engine: Engine) -> tuple[str, int]:
    topic = engine.topics()[0]
    return topic.representative[0].id, topic.id


def test_results_follow_the_seed_and_say_why(engine: Engine) -> None:
    seed, topic = _seed_topic(engine)
    results = engine.recommend(RecommendRequest(positive=[PaperSeed(id=seed)], limit=10))
    assert len(results) == 10 and seed not in [r.id for r in results]
    similar = [h.id for h in engine.similar(seed, 10)]
    assert [r.id for r in results] == similar  # one seed, average = papers like this
    assert sum(r.topic_id == topic for r in results) >= 5
    for result in results:
        assert result.reason.closest_seed == seed
        assert result.reason.shared_topic == (topic if result.topic_id == topic else None)
        assert result.reason.terms, result.title
        paper = engine.paper(result.id)
        text = f"{paper.title} {paper.abstract}".lower()
        assert all(term in text for term in result.reason.terms)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


def test_pasted_text_seeds_work_like_ids(engine: Engine) -> None:
    seed, _ = _seed_topic(engine)
    paper = engine.paper(seed)
    by_text = engine.recommend(
        RecommendRequest(positive=[TextSeed(text=f"{paper.title}. {paper.abstract}")], limit=6),
    )
    by_id = engine.recommend(RecommendRequest(positive=[PaperSeed(id=seed)], limit=5))
    assert by_text[0].id == seed  # a pasted text is not in the corpus, so its twin comes first
    # the paper's own vector averages its 256-token windows; a pasted text is embedded whole
    assert len({r.id for r in by_text[1:]} & {r.id for r in by_id}) >= 4
    assert by_text[0].reason.closest_seed == "positive text 1"


def test_negative_seeds_push_their_neighbours_down(engine: Engine) -> None:
    seed, _ = _seed_topic(engine)
    plain = engine.recommend(RecommendRequest(positive=[PaperSeed(id=seed)], limit=5))
    avoided = plain[0].id
    for strategy in ("average", "best_score"):
        pushed = engine.recommend(
            RecommendRequest(
                positive=[PaperSeed(id=seed)],
                negative=[PaperSeed(id=avoided)],
                strategy=strategy,
                limit=20,
            ),
        )
        ids = [r.id for r in pushed]
        assert avoided not in ids  # seeds never come back, negative ones neither
        assert seed not in ids


def test_filters_apply_before_ranking(engine: Engine) -> None:
    seed, topic = _seed_topic(engine)
    other = next(t for t in engine.topics() if t.id not in (topic, -1))
    results = engine.recommend(
        RecommendRequest(positive=[PaperSeed(id=seed)], topics=[other.id], limit=100)
    )
    assert {r.topic_id for r in results} == {other.id}
    assert len(results) == other.size  # every paper of the topic, however far from the seed


def test_diversity_spreads_the_page(engine: Engine) -> None:
    seed, _ = _seed_topic(engine)
    focused = engine.recommend(RecommendRequest(positive=[PaperSeed(id=seed)], limit=8))
    varied = engine.recommend(
        RecommendRequest(positive=[PaperSeed(id=seed)], limit=8, diversity=0.7)
    )
    assert focused[0].id == varied[0].id  # the best match still leads

    def spread(ids: list[str]) -> float:
        vectors = engine.view.vectors_at([engine.view.row_of(i) for i in ids])
        sims = vectors @ vectors.T
        return float(sims.sum() - sims.trace())

    assert spread([r.id for r in varied]) < spread([r.id for r in focused])


def test_bad_seeds_are_refused(engine: Engine) -> None:
    with pytest.raises(NotFound):
        engine.recommend(RecommendRequest(positive=[PaperSeed(id="no-such-paper")]))
    with pytest.raises(ValidationError):
        PaperSeed(id="a", text="b")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        TextSeed()  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        RecommendRequest(positive=[])
