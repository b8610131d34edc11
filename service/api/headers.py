"""HTTP-level behaviour every route shares: the security headers every answer gets (added by
:class:`service.api.edge.Edge`), and HEAD answered wherever GET is (plain ASGI middleware)."""

from __future__ import annotations

import base64
import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def csp_hash(text: str) -> str:
    """A CSP source allowing exactly this inline script or style."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""For everything that is not a page (JSON, feeds, files): nothing may load or frame it."""

EMPTY_STYLE = csp_hash("")
"""The hash of an empty ``<style>``: the map's library appends one and fills it through the
CSSOM (the lasso's animation), which CSP otherwise refuses."""

PAGE_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-eval'; "
    f"style-src 'self' {EMPTY_STYLE}; img-src 'self' data:; font-src 'self'; connect-src 'self'; "
    "worker-src blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The map page: its own script, style sheet and API only; inline scripts, event-handler
attributes and inline styles are refused. The WebGL library (regl) compiles its draw calls
with ``Function``, hence ``'unsafe-eval'``, and starts its workers from blob: URLs. KaTeX (TeX in
titles) loads its own fonts, and styles its output through the CSSOM, which CSP allows."""

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class HeadAsGet:
    """HEAD is answered wherever GET is: the request goes on as a GET and the body is dropped,
    its headers (Content-Length included) kept. FastAPI's routes list GET alone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
