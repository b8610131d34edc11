"""Routes tagged "topics": the topic list, topics by query, trends, one topic, splitting, and
curation (rename, merge, move papers, list and undo edits)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from service.api.errors import ERROR_RESPONSES
from service.api.routes.deps import (
    WRITE_RESPONSES,
    AppDep,
    EngineDep,
    K,
    QueryText,
    SlotsDep,
    require_api_key,
)
from service.schemas import (
    MAX_TREND_MONTHS,
    Emerging,
    TopicDetail,
    TopicEdit,
    TopicGroupSummary,
    TopicMatch,
    TopicMergeIn,
    TopicNameIn,
    TopicPapersIn,
    TopicSummary,
    TopicTimeline,
    TopicTrend,
)

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


@router.get("/topics", response_model=list[TopicSummary] | list[TopicGroupSummary], tags=["topics"])
def topics(
    engine: EngineDep,
    level: Annotated[
        Literal["fine", "coarse"],
        Query(description="fine: every topic; coarse: groups of related topics (subtopics)."),
    ] = "fine",
) -> list[TopicSummary] | list[TopicGroupSummary]:
    """All topics, largest first, with keyword labels; id -1 holds unclustered papers.
    ``level=coarse`` gives the level above: related topics grouped, with their ``subtopics``."""
    return engine.topics() if level == "fine" else engine.coarse_topics()


@router.get("/topics/search", response_model=list[TopicMatch], tags=["topics"])
async def search_topics(
    engine: EngineDep,
    q: QueryText,
    slots: SlotsDep,
    k: K = 10,
) -> list[TopicMatch]:
    """Topics closest in meaning to free text (query against each topic's centroid)."""
    return await slots.run(engine.find_topics, q, k)


@router.get("/topics/emerging", response_model=Emerging, tags=["topics"])
def emerging_topics(engine: EngineDep, app: AppDep) -> Emerging:
    """Papers added since the build that fit no topic; ``rebuild_suggested`` once there are as
    many as the smallest topic the build allows (they may form a new topic)."""
    return app.emerging(engine)


@router.get("/topics/trending", response_model=list[TopicTrend], tags=["topics"])
def trending_topics(
    engine: EngineDep,
    months: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_TREND_MONTHS,
            description="The recent window in months, ending with the newest paper's month.",
        ),
    ] = 6,
) -> list[TopicTrend]:
    """Topics by recent growth: papers per month in the last ``months`` months against papers
    per month before (new topics first); topics without dated papers are left out."""
    return engine.trending(months)


@router.get("/topics/edits", response_model=list[TopicEdit], tags=["topics"])
def topic_edits(engine: EngineDep, app: AppDep) -> list[TopicEdit]:
    """Every curation edit (renames, merges, moves), oldest first: where it applies in the
    build served now (``status`` orphaned when its topic is gone) and in each build since."""
    return app.topic_edits(engine)


@router.post(
    "/topics/merge",
    response_model=TopicEdit,
    tags=["topics"],
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def merge_topics(engine: EngineDep, body: TopicMergeIn, app: AppDep) -> TopicEdit:
    """Merge ``topics`` into ``into`` (needs the key): their papers join it and they leave every
    listing, now and in every later build."""
    return app.merge_topics(engine, body.into, body.topics)


@router.delete(
    "/topics/edits/{edit_id}",
    status_code=204,
    tags=["topics"],
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def undo_topic_edit(
    engine: EngineDep,
    app: AppDep,
    edit_id: Annotated[int, Path(ge=1, le=2**62, description="Edit id (GET /topics/edits).")],
) -> Response:
    """Undo a curation edit (needs the key): the topics are served as if it was never made."""
    app.undo_topic_edit(engine, edit_id)
    return Response(status_code=204)


@router.get("/topics/{topic_id}", response_model=TopicDetail, tags=["topics"])
def topic(
    engine: EngineDep,
    topic_id: int,
    app: AppDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Papers to list.")] = 100,
) -> TopicDetail:
    """One topic and its papers, closest to the topic centre first, with its sub-topics if it
    was split."""
    return app.topic(engine, topic_id, limit)


@router.post(
    "/topics/{topic_id}/split",
    response_model=TopicDetail,
    tags=["topics"],
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def split_topic(
    engine: EngineDep,
    topic_id: int,
    app: AppDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Papers to list.")] = 100,
) -> TopicDetail:
    """Split a topic into sub-topics (HDBSCAN within its papers; needs the key). They are kept
    in the papers database by their papers: across restarts, incremental builds and refits that
    keep the topic, ``GET /topics/{id}`` lists them. Splitting again replaces them."""
    return app.split_topic(engine, topic_id, limit)


@router.get("/topics/{topic_id}/timeline", response_model=TopicTimeline, tags=["topics"])
def topic_timeline(engine: EngineDep, topic_id: int) -> TopicTimeline:
    """Papers of a topic per month (YYYY-MM, every month in range), plus how many lack a date."""
    return engine.timeline(topic_id)


@router.put(
    "/topics/{topic_id}/name",
    response_model=TopicEdit,
    tags=["topics"],
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def rename_topic(engine: EngineDep, topic_id: int, body: TopicNameIn, app: AppDep) -> TopicEdit:
    """Give a topic a name (needs the key; 1-100 characters, control characters removed). It is
    shown in every listing and on the map (``user_named``), now and in every later build."""
    return app.rename_topic(engine, topic_id, body.name)


@router.post(
    "/topics/{topic_id}/papers",
    response_model=TopicEdit,
    tags=["topics"],
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def move_papers(engine: EngineDep, topic_id: int, body: TopicPapersIn, app: AppDep) -> TopicEdit:
    """Move papers into a topic (needs the key); they stay there in every later build."""
    return app.move_papers(engine, topic_id, body.paper_ids)
