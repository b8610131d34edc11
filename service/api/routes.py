"""HTTP routes under /api/v1. Each one is a thin call into the :class:`Engine`."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from service.api.errors import ERROR_RESPONSES, ErrorResponse
from service.engine import MAX_QUERY_CHARS, NOT_BLANK_PATTERN, Engine
from service.errors import NotFound, NotReady, Unauthorized, WritesDisabled
from service.retrieval import Mode, fusion_params
from service.schemas import (
    MAX_K,
    BuildManifest,
    Health,
    Hit,
    MapPoints,
    PaperOut,
    Ready,
    TopicDetail,
    TopicSummary,
)
from service.serving import BuildWatcher
from service.store import Store

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


def get_engine(request: Request) -> Engine:
    watcher: BuildWatcher = request.app.state.watcher
    engine = watcher.engine  # read once: this request uses one build from start to end
    if engine is None:
        raise NotReady(watcher.reason)
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)
K = Annotated[int, Query(ge=1, le=MAX_K, description="Number of results.")]
PaperId = Annotated[str, Path(min_length=1, max_length=200, description="Paper id.")]


class SearchResults(BaseModel):
    query: str
    results: list[Hit]


class SimilarResults(BaseModel):
    paper_id: str
    results: list[Hit]


@router.get("/health", response_model=Health, tags=["service"])
def health() -> Health:
    """Liveness: the process answers."""
    return Health()


@router.get("/ready", response_model=Ready, tags=["service"])
def ready(engine: EngineDep, request: Request) -> Ready:
    """Readiness: a build is loaded (503 otherwise); ``note`` says if it is a fallback."""
    return Ready(
        note=request.app.state.watcher.note,
        ready=True,
        build_id=engine.manifest.build_id,
        papers=engine.size,
        topics=engine.manifest.n_topics,
        model=engine.manifest.model.name,
    )


@router.get("/build", response_model=BuildManifest, tags=["service"])
def build_manifest(engine: EngineDep) -> BuildManifest:
    """The manifest of the build being served: model, parameters, stage times, versions."""
    return engine.manifest


@router.get("/search", response_model=SearchResults, tags=["search"])
def search(
    engine: EngineDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY_CHARS,
            pattern=NOT_BLANK_PATTERN,
            description="Free text (not only blanks).",
        ),
    ],
    request: Request,
    k: K = 10,
    mode: Annotated[
        Mode | None,
        Query(
            description="dense (by meaning), lexical (BM25 over title and abstract) or hybrid "
            "(both fused); default: the server's PAPERSCOPE_SEARCH_MODE."
        ),
    ] = None,
) -> SearchResults:
    """Papers matching free text (a question, a title, or a pasted abstract)."""
    settings = request.app.state.settings
    hits = engine.search(q, k, mode or settings.search_mode, fusion_params(settings))
    return SearchResults(query=q, results=hits)


@router.get("/papers/{paper_id:path}/similar", response_model=SimilarResults, tags=["search"])
def similar(engine: EngineDep, paper_id: PaperId, k: K = 10) -> SimilarResults:
    """Papers like this one (the paper itself is never among the results)."""
    return SimilarResults(paper_id=paper_id, results=engine.similar(paper_id, k))


def require_api_key(
    request: Request, key: Annotated[str | None, Security(API_KEY_HEADER)] = None
) -> None:
    """Writes need the configured key (compared in constant time); no key configured = no writes."""
    configured = request.app.state.settings.api_key
    if configured is None:
        raise WritesDisabled("writes are disabled: set PAPERSCOPE_API_KEY on the server")
    if key is None or not hmac.compare_digest(key.encode(), configured.get_secret_value().encode()):
        raise Unauthorized("a valid X-API-Key header is required for this request")


WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
    403: {"model": ErrorResponse, "description": "Writes are disabled (no API key configured)"},
}


@router.delete(
    "/papers/{paper_id:path}",
    status_code=204,
    response_class=Response,
    tags=["papers"],
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def delete_paper(engine: EngineDep, paper_id: PaperId, request: Request) -> Response:
    """Delete a paper: gone from every answer at once, and from the next build (needs the key)."""
    with Store(request.app.state.settings.db_path) as store:
        existed = store.delete(paper_id)
    hidden = engine.hide([paper_id])
    if not existed and not hidden:
        raise NotFound(f"no paper with id {paper_id!r}")
    return Response(status_code=204)


@router.get("/papers/{paper_id:path}", response_model=PaperOut, tags=["papers"])
def paper(engine: EngineDep, paper_id: PaperId) -> PaperOut:
    """One paper with its topic."""
    return engine.paper(paper_id)


@router.get("/topics", response_model=list[TopicSummary], tags=["topics"])
def topics(engine: EngineDep) -> list[TopicSummary]:
    """All topics, largest first, with keyword labels; id -1 holds unclustered papers."""
    return engine.topics()


@router.get("/topics/{topic_id}", response_model=TopicDetail, tags=["topics"])
def topic(
    engine: EngineDep,
    topic_id: int,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Papers to list.")] = 100,
) -> TopicDetail:
    """One topic and its papers, closest to the topic centre first."""
    return engine.topic(topic_id, limit)


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
