"""Routes tagged "search": papers by free text, like one paper, or like several seeds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from service.api.errors import ERROR_RESPONSES
from service.api.routes.deps import (
    AppDep,
    EngineDep,
    FilterDep,
    K,
    Offset,
    PaperId,
    QueryText,
    SlotsDep,
)
from service.api.slots import run_scan
from service.schemas import Hit, Recommendation, RecommendRequest
from service.search.fusion import Mode

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


class SearchResults(BaseModel):
    query: str
    results: list[Hit]


class SimilarResults(BaseModel):
    paper_id: str
    results: list[Hit]


class RecommendResults(BaseModel):
    results: list[Recommendation]


@router.get("/search", response_model=SearchResults, tags=["search"])
async def search(
    engine: EngineDep,
    q: QueryText,
    app: AppDep,
    filters: FilterDep,
    slots: SlotsDep,
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
    found = await slots.run(app.search, engine, q, k, mode, filters, offset)
    return SearchResults(query=q, results=found)


@router.get("/papers/{paper_id:path}/similar", response_model=SimilarResults, tags=["search"])
async def similar(
    engine: EngineDep, paper_id: PaperId, filters: FilterDep, k: K = 10, offset: Offset = 0
) -> SimilarResults:
    """Papers like this one (the paper itself is never among the results), among those the
    filters let through."""
    # Mostly answered before this route (service/api/like_this.py), by the same rule: on the
    # event loop when the scan is small, else in a worker thread.
    found = await run_scan(engine.scan_size(filters), engine.similar, paper_id, k, filters, offset)
    return SimilarResults(paper_id=paper_id, results=found)


@router.post("/recommend", response_model=RecommendResults, tags=["search"])
async def recommend_papers(
    engine: EngineDep, body: RecommendRequest, slots: SlotsDep
) -> RecommendResults:
    """Papers like these: positive (and optional negative) seeds, each a paper id or pasted
    text; filters apply before ranking; seeds never come back; each result carries its reason
    (closest seed, shared topic, shared key terms). A read: no key needed."""
    return RecommendResults(results=await slots.run(engine.recommend, body))
