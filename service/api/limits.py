"""Request size limits, as plain ASGI middleware (no per-request task overhead)."""

from __future__ import annotations

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.auth import check_api_key
from service.api.errors import error_response
from service.errors import PaperscopeError

ADD_PAPERS = ("POST", "/api/v1/papers")
"""The one route whose documented body (1,000 papers with abstracts of up to 50,000
characters) is larger than the general limit."""


class BodySizeLimit:
    """Refuse a body over its route's limit from its declared length (413) before reading it,
    and a chunked body without a length (411). ``POST /api/v1/papers`` may send up to
    ``papers_max_bytes``, every other route ``max_bytes``; a body over ``max_bytes`` is read only
    from a client that sent the API key (401/403 otherwise), so nobody else can make the server
    read and parse tens of megabytes."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        papers_max_bytes: int,
        api_key: SecretStr | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.papers_max_bytes = max(papers_max_bytes, max_bytes)
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            declared = headers.get(b"content-length", b"")
            size = int(declared) if declared.isdigit() else 0
            limit = self.papers_max_bytes if _route(scope) == ADD_PAPERS else self.max_bytes
            if size > limit:
                response = error_response(413, "too_large", f"request body over {limit} bytes")
                await response(scope, receive, send)
                return
            if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                response = error_response(411, "length_required", "send a Content-Length")
                await response(scope, receive, send)
                return
            if size > self.max_bytes:
                key = headers.get(b"x-api-key")
                try:
                    check_api_key(self.api_key, None if key is None else key.decode("latin-1"))
                except PaperscopeError as err:
                    response = error_response(err.http_status, err.code, err.message)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _route(scope: Scope) -> tuple[str, str]:
    """Method and path, the path without the prefix a proxy mounts the app under."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return scope["method"], path.rstrip("/") or "/"
