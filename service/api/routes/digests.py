"""Routes tagged "digests": who gets a collection's email digest, and the unsubscribe link."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import HTMLResponse

from service.api.errors import ERROR_RESPONSES
from service.api.routes.collections import CollectionName
from service.api.routes.deps import WRITE_RESPONSES, AppDep, require_api_key
from service.schemas import MAX_EMAIL_CHARS, SubscriberIn, SubscriberOut

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["digests"])

Email = Annotated[
    str, Path(min_length=3, max_length=MAX_EMAIL_CHARS, description="The subscriber's address.")
]
Token = Annotated[
    str, Query(min_length=1, max_length=200, description="The secret from the digest's link.")
]


@router.get(
    "/collections/{name}/subscribers",
    response_model=list[SubscriberOut],
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def list_subscribers(name: CollectionName, app: AppDep) -> list[SubscriberOut]:
    """Who gets the collection's email digest (needs the key: addresses are private)."""
    return app.subscribers(name)


@router.post(
    "/collections/{name}/subscribers",
    response_model=SubscriberOut,
    dependencies=[Depends(require_api_key)],
    responses={**WRITE_RESPONSES, 201: {"model": SubscriberOut, "description": "Subscribed"}},
)
def add_subscriber(
    name: CollectionName, body: SubscriberIn, app: AppDep, response: Response
) -> SubscriberOut:
    """Subscribe an address to the collection's digest (needs the key): 201 when new, 200 when
    it was subscribed already. ``paperscope digest send`` mails the new papers."""
    saved, created = app.subscribe(name, body.email)
    response.status_code = 201 if created else 200
    return saved


@router.delete(
    "/collections/{name}/subscribers/{email}",
    status_code=204,
    response_class=Response,
    dependencies=[Depends(require_api_key)],
    responses=WRITE_RESPONSES,
)
def remove_subscriber(name: CollectionName, email: Email, app: AppDep) -> Response:
    """Unsubscribe an address (needs the key); 204, 404 when it is not subscribed."""
    app.unsubscribe(name, email)
    return Response(status_code=204)


@router.get("/unsubscribe", response_class=HTMLResponse)
def unsubscribe_link(token: Token, app: AppDep) -> HTMLResponse:
    """The link at the foot of every digest: unsubscribes its reader, shows a plain page."""
    return HTMLResponse(app.unsubscribe_link(token))


@router.post("/unsubscribe", response_class=HTMLResponse)
def unsubscribe_one_click(token: Token, app: AppDep) -> HTMLResponse:
    """The same for mail programs' own unsubscribe button (List-Unsubscribe-Post, RFC 8058)."""
    return HTMLResponse(app.unsubscribe_link(token))
