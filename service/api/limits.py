"""Request size limits, as plain ASGI middleware (no per-request task overhead)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import error_response


class BodySizeLimit:
    """Refuse a body over ``max_bytes`` from its declared length (413) before reading it, and a
    chunked body without a length (411)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            declared = headers.get(b"content-length", b"")
            if declared.isdigit() and int(declared) > self.max_bytes:
                response = error_response(
                    413, "too_large", f"request body over {self.max_bytes} bytes"
                )
                await response(scope, receive, send)
                return
            if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                response = error_response(411, "length_required", "send a Content-Length")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
