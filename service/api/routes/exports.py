"""The route tagged "export": papers out as CSV, Parquet, JSON Lines or BibTeX, streamed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from service.api.errors import ERROR_RESPONSES
from service.api.routes.deps import AppDep, EngineDep, FilterDep
from service.query import export
from service.schemas import COLLECTION_NAME_PATTERN, MAX_K, MAX_QUERY_CHARS, NOT_BLANK_PATTERN

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


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
