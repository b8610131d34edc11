"""HTTP routes under /api/v1. Each one translates HTTP into a call on the application
(:class:`Paperscope`) or the engine of the build being served, and the answer back."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, Security
from fastapi.responses import StreamingResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError

from service.api.auth import check_api_key
from service.api.errors import ERROR_RESPONSES, ErrorResponse
from service.api.urls import public_base_url
from service.app import Paperscope
from service.errors import InvalidInput
from service.query import export
from service.query.engine import Engine
from service.schemas import (
    COLLECTION_NAME_PATTERN,
    MAX_FILTER_VALUES,
    MAX_K,
    MAX_OFFSET,
    MAX_QUERY_CHARS,
    MAX_TREND_MONTHS,
    NOT_BLANK_PATTERN,
    AddReport,
    BuildManifest,
    CollectionIn,
    CollectionOut,
    DuplicatePair,
    Emerging,
    Feed,
    Health,
    Hit,
    MapPoints,
    NewPapers,
    PaperFilter,
    PaperOut,
    Ready,
    Recommendation,
    RecommendRequest,
    TopicDetail,
    TopicGroupSummary,
    TopicMatch,
    TopicSummary,
    TopicTimeline,
    TopicTrend,
)
from service.search.fusion import Mode

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


async def get_app(request: Request) -> Paperscope:
    """The application object the server was made with."""
    app: Paperscope = request.app.state.paperscope
    return app


async def get_engine(app: Annotated[Paperscope, Depends(get_app)]) -> Engine:
    """The engine of the build being served, read once: this request uses one build from start
    to end. ``async`` (like the routes that answer from memory in well under a millisecond): it
    runs on the event loop, without a hop to a thread."""
    return app.engine()


AppDep = Annotated[Paperscope, Depends(get_app)]
EngineDep = Annotated[Engine, Depends(get_engine)]
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)
K = Annotated[int, Query(ge=1, le=MAX_K, description="Number of results.")]
QueryText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        pattern=NOT_BLANK_PATTERN,
        description="Free text (not only blanks).",
    ),
]
PaperId = Annotated[str, Path(min_length=1, max_length=200, description="Paper id.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip (paging).")]


def paper_filter(
    since: Annotated[date | None, Query(description="Papers dated on/after YYYY-MM-DD.")] = None,
    until: Annotated[date | None, Query(description="Papers dated on/before YYYY-MM-DD.")] = None,
    categories: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_FILTER_VALUES,
            description="Papers in any of these categories (repeat the parameter); cs.CL, or cs "
            "for every cs.*",
        ),
    ] = None,
    topics: Annotated[
        list[int] | None,
        Query(
            max_length=MAX_FILTER_VALUES,
            description="Papers in any of these topics (repeat the parameter).",
        ),
    ] = None,
) -> PaperFilter:
    """The query parameters of :class:`PaperFilter`, shared by every route that lists papers."""
    try:
        return PaperFilter(
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
            categories=categories or [],
            topics=topics or [],
        )
    except ValidationError as err:
        raise InvalidInput(f"bad filter: {err.errors()[0]['msg']}") from None


FilterDep = Annotated[PaperFilter, Depends(paper_filter)]


class SearchResults(BaseModel):
    query: str
    results: list[Hit]


class SimilarResults(BaseModel):
    paper_id: str
    results: list[Hit]


@router.get("/health", response_model=Health, tags=["service"])
async def health() -> Health:
    """Liveness: the process answers."""
    return Health()


@router.get("/ready", response_model=Ready, tags=["service"])
async def ready(engine: EngineDep, app: AppDep) -> Ready:
    """Readiness: a build is loaded (503 otherwise); ``note`` says if it is a fallback."""
    return app.ready(engine)


@router.get("/build", response_model=BuildManifest, tags=["service"])
def build_manifest(engine: EngineDep) -> BuildManifest:
    """The manifest of the build being served: model, parameters, stage times, versions."""
    return engine.manifest


@router.get("/search", response_model=SearchResults, tags=["search"])
def search(
    engine: EngineDep,
    q: QueryText,
    app: AppDep,
    filters: FilterDep,
    k: K = 10,
    offset: Offset = 0,
    mode: Annotated[
        Mode | None,
        Query(
            description="dense (by meaning), lexical (BM25 over title and abstract) or hybrid "
            "(both fused); default: the server's PAPERSCOPE_SEARCH_MODE."
        ),
    ] = None,
) -> SearchResults:
    """Papers matching free text (a question, a title, or a pasted abstract); filters choose the
    papers before ranking, so ``k`` results come back whenever that many match."""
    return SearchResults(query=q, results=app.search(engine, q, k, mode, filters, offset))


@router.get("/papers/{paper_id:path}/similar", response_model=SimilarResults, tags=["search"])
def similar(
    engine: EngineDep, paper_id: PaperId, filters: FilterDep, k: K = 10, offset: Offset = 0
) -> SimilarResults:
    """Papers like this one (the paper itself is never among the results), among those the
    filters let through."""
    return SimilarResults(paper_id=paper_id, results=engine.similar(paper_id, k, filters, offset))


class RecommendResults(BaseModel):
    results: list[Recommendation]


@router.get("/papers/{paper_id:path}/duplicates", response_model=SimilarResults, tags=["papers"])
def paper_duplicates(engine: EngineDep, paper_id: PaperId, app: AppDep) -> SimilarResults:
    """Likely duplicates of a paper: the same paper under another id, versions, copied
    abstracts (cosine >= PAPERSCOPE_DUPLICATE_THRESHOLD)."""
    return SimilarResults(paper_id=paper_id, results=app.duplicates_of(engine, paper_id))


@router.post("/recommend", response_model=RecommendResults, tags=["search"])
def recommend_papers(engine: EngineDep, body: RecommendRequest) -> RecommendResults:
    """Papers like these: positive (and optional negative) seeds, each a paper id or pasted
    text; filters apply before ranking; seeds never come back; each result carries its reason
    (closest seed, shared topic, shared key terms). A read: no key needed."""
    return RecommendResults(results=engine.recommend(body))


def require_api_key(
    request: Request, key: Annotated[str | None, Security(API_KEY_HEADER)] = None
) -> None:
    """Writes need the configured key (compared in constant time); no key configured = no writes."""
    check_api_key(request.app.state.settings.api_key, key)


WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
    403: {"model": ErrorResponse, "description": "Writes are disabled (no API key configured)"},
    507: {"model": ErrorResponse, "description": "No space left on the server's disk"},
}


@router.post(
    "/papers",
    response_model=AddReport,
    tags=["papers"],
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def add_papers(engine: EngineDep, body: NewPapers, app: AppDep) -> AddReport:
    """Add (or update) papers without a rebuild (needs the key): they are stored, embedded,
    assigned to an existing topic (-1 if none fits) and placed on the map, answered by every
    query at once, kept across restarts and included in the next build. Up to 1,000 a request.
    """
    return app.add_papers(engine, body.papers)


@router.delete(
    "/papers/{paper_id:path}",
    status_code=204,
    response_class=Response,
    tags=["papers"],
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def delete_paper(engine: EngineDep, paper_id: PaperId, app: AppDep) -> Response:
    """Delete a paper: gone from every answer at once, and from the next build (needs the key)."""
    app.delete_paper(engine, paper_id)
    return Response(status_code=204)


@router.get("/papers/{paper_id:path}", response_model=PaperOut, tags=["papers"])
async def paper(engine: EngineDep, paper_id: PaperId) -> PaperOut:
    """One paper with its topic."""
    return engine.paper(paper_id)


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
def search_topics(
    engine: EngineDep,
    q: QueryText,
    k: K = 10,
) -> list[TopicMatch]:
    """Topics closest in meaning to free text (query against each topic's centroid)."""
    return engine.find_topics(q, k)


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


@router.get("/duplicates", response_model=list[DuplicatePair], tags=["papers"])
def duplicates(
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Pairs to list.")] = 100,
) -> list[DuplicatePair]:
    """The build's report of likely duplicate pairs, most similar first."""
    return engine.duplicate_report(limit)


@router.get("/map", response_model=MapPoints, tags=["map"])
def map_points(engine: EngineDep, request: Request) -> Response:
    """Every paper's 2-D map position and topic, as parallel arrays (compact for big corpora).

    Serialised and compressed once per build, then served from memory.
    """
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            engine.map_json(compressed=True),
            media_type="application/json",
            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )
    return Response(engine.map_json(compressed=False), media_type="application/json")


CollectionName = Annotated[
    str,
    Path(
        pattern=COLLECTION_NAME_PATTERN,
        description="Collection name: letters, digits, '.', '_', '-' (up to 100).",
    ),
]


@router.get("/collections", response_model=list[CollectionOut], tags=["collections"])
def list_collections(engine: EngineDep, app: AppDep) -> list[CollectionOut]:
    """Every saved collection, by name, with the seeds no longer served (``missing``)."""
    return app.collections(engine)


@router.put(
    "/collections/{name}",
    response_model=CollectionOut,
    tags=["collections"],
    dependencies=[Depends(require_api_key)],
    responses={**WRITE_RESPONSES, 201: {"model": CollectionOut, "description": "Created"}},
)
def put_collection(
    engine: EngineDep,
    name: CollectionName,
    body: CollectionIn,
    app: AppDep,
    response: Response,
) -> CollectionOut:
    """Create (201) or replace (200) a collection: positive and negative seed papers (served
    now), papers already seen and a note (needs the key). Kept in the papers database: it
    survives rebuilds, restarts and deletions of its papers."""
    saved, created = app.put_collection(engine, name, body)
    response.status_code = 201 if created else 200
    return saved


@router.get("/collections/{name}", response_model=CollectionOut, tags=["collections"])
def get_collection(engine: EngineDep, name: CollectionName, app: AppDep) -> CollectionOut:
    """One collection; ``missing`` lists its seeds deleted since (kept, not used)."""
    return app.collection(engine, name)


@router.delete(
    "/collections/{name}",
    status_code=204,
    response_class=Response,
    tags=["collections"],
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def delete_collection(name: CollectionName, app: AppDep) -> Response:
    """Delete a collection (needs the key); 204."""
    app.delete_collection(name)
    return Response(status_code=204)


FeedSince = Annotated[
    date | None,
    Query(description="Papers dated or added on/after YYYY-MM-DD (default: every paper)."),
]
FeedLimit = Annotated[int, Query(ge=1, le=MAX_K, description="Papers to list.")]


@router.get("/collections/{name}/feed", response_model=Feed, tags=["collections"])
def collection_feed(
    engine: EngineDep,
    name: CollectionName,
    app: AppDep,
    since: FeedSince = None,
    limit: FeedLimit = 20,
) -> Feed:
    """New papers for a collection: papers dated or added since ``since``, ranked by the
    collection's recommend (with reasons); its seeds and seen papers never come back."""
    return app.feed(engine, name, since.isoformat() if since else None, limit)


@router.get(
    "/collections/{name}/feed.atom",
    response_class=Response,
    tags=["collections"],
    responses={200: {"content": {"application/atom+xml": {}}, "description": "Atom 1.0 feed"}},
)
def collection_feed_atom(
    engine: EngineDep,
    name: CollectionName,
    request: Request,
    app: AppDep,
    since: FeedSince = None,
    limit: FeedLimit = 20,
) -> Response:
    """The collection's feed as an Atom document, for any feed reader."""
    day = since.isoformat() if since else None
    body = app.feed_atom(engine, name, day, limit, public_base_url(request))
    return Response(body, media_type="application/atom+xml")


@router.get(
    "/export/papers",
    response_class=StreamingResponse,
    tags=["export"],
    responses={
        200: {
            "content": {media: {} for media in export.MEDIA_TYPES.values()},
            "description": "The papers, streamed",
        }
    },
)
def export_papers(
    engine: EngineDep,
    app: AppDep,
    filters: FilterDep,
    format: Annotated[
        export.Format,
        Query(
            description="csv, parquet, jsonl (id, title, date, categories, topic id and name, "
            "outlier, x, y) or bibtex (for Zotero, JabRef)."
        ),
    ] = "csv",
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_QUERY_CHARS,
            pattern=NOT_BLANK_PATTERN,
            description="Export the hits of this search.",
        ),
    ] = None,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Hits of q, or papers of a feed.")] = MAX_K,
    topic: Annotated[int | None, Query(description="Export this topic's members.")] = None,
    collection: Annotated[
        str | None,
        Query(pattern=COLLECTION_NAME_PATTERN, description="Export this collection's papers."),
    ] = None,
    feed: Annotated[
        bool,
        Query(
            description="With collection: its feed (k papers since `since`) instead; "
            "ignored without one."
        ),
    ] = False,
) -> StreamingResponse:
    """Papers out, streamed: every served paper, or a list (``q``, ``topic`` or ``collection``;
    several: the papers in all of them), narrowed by the filters."""
    chunks = app.export(
        engine, format, filters, q=q, k=k, topic=topic, collection=collection, feed=feed
    )
    suffix = "bib" if format == "bibtex" else format
    return StreamingResponse(
        chunks,
        media_type=export.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="papers.{suffix}"'},
    )
