"""Routes tagged "papers": one paper, its duplicates, and the writes (add, delete)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from service.api.errors import ERROR_RESPONSES
from service.api.routes.deps import WRITE_RESPONSES, AppDep, EngineDep, PaperId, require_api_key
from service.api.routes.search import SimilarResults
from service.schemas import AddReport, DuplicatePair, NewPapers, PaperOut

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


@router.get("/papers/{paper_id:path}/duplicates", response_model=SimilarResults, tags=["papers"])
def paper_duplicates(engine: EngineDep, paper_id: PaperId, app: AppDep) -> SimilarResults:
    """Likely duplicates of a paper: the same paper under another id, versions, copied
    abstracts (cosine >= PAPERSCOPE_DUPLICATE_THRESHOLD)."""
    return SimilarResults(paper_id=paper_id, results=app.duplicates_of(engine, paper_id))


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


@router.get("/duplicates", response_model=list[DuplicatePair], tags=["papers"])
def duplicates(
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Pairs to list.")] = 100,
) -> list[DuplicatePair]:
    """The build's report of likely duplicate pairs, most similar first."""
    return engine.duplicate_report(limit)
