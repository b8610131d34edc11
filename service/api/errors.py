"""One JSON error envelope for every error the API returns.

``{"error": {"code": "<machine code>", "message": "<for people>", "details": [...] | null}}``
Domain errors (:class:`PaperscopeError`), HTTP errors (unknown route, wrong method) and request
validation errors all go through here, so clients handle one shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import PaperscopeError, storage_error

log = logging.getLogger(__name__)

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


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details))
    return JSONResponse(status_code=status, content=body.model_dump())


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
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(err.status_code, "http_error")
        return error_response(err.status_code, code, str(err.detail))

    @app.exception_handler(OSError)
    async def _storage(request: Request, err: OSError) -> JSONResponse:
        """A full disk (507) or a read-only, unreadable folder (503): what and where, no 500."""
        failed = storage_error(err, f"{request.method} {request.url.path}")
        log.error("%s", failed.message)
        return error_response(failed.http_status, failed.code, failed.message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; see the server log")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        404: "Unknown paper or topic id",
        422: "Invalid parameters",
        503: "No build published yet, or the build or papers database is damaged",
    }.items()
}
