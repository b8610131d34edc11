"""What every route shares: the application and engine as dependencies, the API key check
for writes, and the common query and path parameters."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import Field, ValidationError

from service.api.auth import check_api_key
from service.api.errors import ErrorResponse
from service.api.slots import ComputeSlots
from service.app import Paperscope
from service.errors import InvalidInput
from service.query.engine import Engine
from service.schemas import (
    MAX_FILTER_VALUES,
    MAX_K,
    MAX_OFFSET,
    MAX_PAPER_ID_CHARS,
    MAX_QUERY_CHARS,
    NOT_BLANK_PATTERN,
    TOPIC_ID_LIMIT,
    PaperFilter,
)


async def get_app(request: Request) -> Paperscope:
    """The application object the server was made with."""
    app: Paperscope = request.app.state.paperscope
    return app


async def get_engine(request: Request) -> Engine:
    """The engine of the build being served, read once: this request uses one build from start
    to end. ``async`` (like the routes that answer from memory in well under a millisecond): it
    runs on the event loop, without a hop to a thread; and it reads the application itself
    rather than through :func:`get_app`: each dependency costs every request its solving."""
    app: Paperscope = request.app.state.paperscope
    return app.engine()


async def get_slots(request: Request) -> ComputeSlots:
    """The process's slots for routes that embed a text (:mod:`service.api.slots`)."""
    slots: ComputeSlots = request.app.state.compute_slots
    return slots


AppDep = Annotated[Paperscope, Depends(get_app)]
SlotsDep = Annotated[ComputeSlots, Depends(get_slots)]
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
PaperId = Annotated[str, Path(min_length=1, max_length=MAX_PAPER_ID_CHARS, description="Paper id.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip (paging).")]


async def paper_filter(
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
        list[Annotated[int, Field(ge=-TOPIC_ID_LIMIT, lt=TOPIC_ID_LIMIT)]] | None,
        Query(
            max_length=MAX_FILTER_VALUES,
            description="Papers in any of these topics (repeat the parameter).",
        ),
    ] = None,
) -> PaperFilter:
    """The query parameters of :class:`PaperFilter`, shared by every route that lists papers.
    ``async``: plain parsing, on the event loop rather than a hop to a worker thread."""
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
