"""Routes tagged "collections": saved collections and their feeds (JSON and Atom)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from service.api.errors import ERROR_RESPONSES
from service.api.routes.deps import WRITE_RESPONSES, AppDep, EngineDep, require_api_key
from service.api.urls import public_base_url
from service.schemas import (
    COLLECTION_NAME_PATTERN,
    MAX_K,
    CollectionIn,
    CollectionOut,
    Feed,
    FeedbackIn,
)

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


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


@router.post(
    "/collections/{name}/feedback",
    response_model=CollectionOut,
    tags=["collections"],
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def collection_feedback(
    engine: EngineDep, name: CollectionName, body: FeedbackIn, app: AppDep
) -> CollectionOut:
    """A thumbs up or down on a served paper (needs the key): up adds it to the collection's
    positive papers, down to its negative ones, both to its seen papers (it leaves the feed).
    With at least 3 of each kind (seeds count) the feed ranks by a classifier."""
    return app.rate(engine, name, body)


@router.get("/collections/{name}/uncertain", response_model=Feed, tags=["collections"])
def collection_uncertain(
    engine: EngineDep,
    name: CollectionName,
    app: AppDep,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Papers to list.")] = 10,
) -> Feed:
    """Help me decide: the unseen papers the collection's classifier is least sure about (a
    rating there teaches it most); the feed's top papers while it has too few ratings."""
    return app.uncertain(engine, name, k)


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
