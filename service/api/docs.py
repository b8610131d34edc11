"""``/docs``: Swagger UI from files installed with paperscope (the fastapi-offline package ships
them), never from a CDN, so the docs work offline and behind a strict Content-Security-Policy.

FastAPI's self-hosted docs recipe: its default ``/docs`` (and ReDoc, which paperscope does not
serve) is switched off, and the same page is served with the asset URLs pointing here.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.api.headers import csp_hash

ASSETS = Path(str(files("fastapi_offline") / "static"))
"""swagger-ui-bundle.js, swagger-ui.css and favicon.png (Swagger UI 5, Apache-2.0)."""
ASSETS_URL = "static/docs"
"""Relative, like the map page's own files: right under any path prefix a proxy adds."""
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_page(openapi_url: str, title: str) -> tuple[bytes, str]:
    """The Swagger UI page and its Content-Security-Policy: its assets from this server, its
    one inline script (the set-up) allowed by its hash."""
    page = bytes(
        get_swagger_ui_html(
            openapi_url=openapi_url.lstrip("/"),
            title=f"{title} - API docs",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from swagger.io
        ).body
    )
    hashes = " ".join(csp_hash(script) for script in INLINE_SCRIPT.findall(page.decode()))
    csp = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )
    return page, csp


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets; call before the app's own ``/static`` mount."""
    assert app.openapi_url is not None
    page, csp = docs_page(app.openapi_url, app.title)
    app.mount(f"/{ASSETS_URL}", StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": csp})
