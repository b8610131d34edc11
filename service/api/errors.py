"""One JSON error envelope for every error the API returns.

``{"error": {"code": "<machine code>", "message": "<for people>", "details": [...] | null,
"request_id": "<the request's id>"}}``
Domain errors (:class:`PaperscopeError`), HTTP errors (unknown route, wrong method) and request
validation errors all go through here, so clients handle one shape.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from service.errors import PaperscopeError, storage_error

log = logging.getLogger(__name__)

CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("paperscope_request_id", default=None)
"""The id of the request being answered (set by :class:`service.api.edge.Edge`)."""

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "invalid_input",
    503: "not_ready",
    507: "insufficient_storage",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None
    request_id: str | None = None
    """The request's id, as in the ``X-Request-ID`` answer header and the server log."""


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error = ErrorBody(
        code=code, message=message, details=details, request_id=CURRENT_REQUEST_ID.get()
    )
    body = ErrorResponse(error=error)
    return JSONResponse(status_code=status, content=body.model_dump(), headers=headers)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> str:
    """The methods some route answers at this path, for a 405's ``Allow`` (several routes may
    share a path, one per method, and HEAD is answered wherever GET is): each asked of the
    app's routes in turn. Mounts (static files) answer their own 405s with their own Allow."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    allowed = set()
    for method in METHODS:
        scope = {**request.scope, "method": "GET" if method == "HEAD" else method}
        if any(route.matches(scope)[0] == Match.FULL for route in routes):
            allowed.add(method)
    return ", ".join(m for m in METHODS if m in allowed)


def _validation_details(err: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in err.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PaperscopeError)
    async def _domain(_: Request, err: PaperscopeError) -> JSONResponse:
        return error_response(err.http_status, err.code, err.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        details = _validation_details(err)
        summary = "; ".join(f"{d['location']}: {d['message']}" for d in details)
        return error_response(422, "invalid_input", f"invalid request: {summary}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(err.status_code, "http_error")
        headers = dict(err.headers or {})
        if err.status_code == 405:
            headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
        return error_response(err.status_code, code, str(err.detail), headers=headers)

    @app.exception_handler(OSError)
    async def _storage(request: Request, err: OSError) -> JSONResponse:
        """A full disk (507) or a read-only, unreadable folder (503): what and where, no 500."""
        failed = storage_error(err, f"{request.method} {request.url.path}")
        log.error("%s", failed.message)
        return error_response(failed.http_status, failed.code, failed.message)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        404: "Unknown paper or topic id",
        422: "Invalid parameters",
        503: "No build published yet, or the build or papers database is damaged",
    }.items()
}
