"""The route tagged "map": every paper's map position, compressed once per build."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.api.errors import ERROR_RESPONSES
from service.api.routes.deps import EngineDep
from service.schemas import MapPoints

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


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
