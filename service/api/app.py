"""FastAPI app factory: serves the published build (switching when a new one is published)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from service import __version__
from service.api.docs import install_docs
from service.api.edge import Edge
from service.api.errors import install_error_handlers
from service.api.headers import PAGE_CSP, HeadAsGet
from service.api.like_this import LikeThisFastPath
from service.api.limits import BodySizeLimit
from service.api.metrics import metrics
from service.api.routes import ROUTERS
from service.api.slots import ComputeSlots
from service.app import Paperscope
from service.config import Settings, runtime_settings
from service.embed.backends import Embedder, load_embedder

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings, embedder: Embedder | None = None) -> FastAPI:
    """Build the app. ``embedder`` may be passed in (tests share one); else it is loaded here."""
    paperscope = Paperscope(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model = embedder or load_embedder(settings, serving=True)
        model.encode(["warm up"])  # first call pays tokenizer / graph set-up, not the first user
        paperscope.serve(model)
        yield
        paperscope.stop()

    app = FastAPI(
        title="paperscope",
        version=__version__,
        description="Semantic search and topic maps for scientific paper abstracts.",
        lifespan=lifespan,
        docs_url=None,  # served from bundled files by install_docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.compute_slots = ComputeSlots()
    app.state.paperscope = paperscope
    app.add_middleware(LikeThisFastPath)  # innermost: every other middleware applies to it
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    if settings.cors_origins:  # closed unless origins are configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type"],
        )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        papers_max_bytes=settings.max_papers_body_bytes,
        api_key=settings.api_key,
    )
    app.add_middleware(HeadAsGet)
    # outermost: ids, security headers and metrics on every answer (refusals and 500s
    # included), an exception turned into one 500 line
    app.add_middleware(Edge, metrics=settings.metrics)
    install_error_handlers(app)
    if settings.metrics:
        app.add_route("/metrics", metrics, include_in_schema=False)

    for router in ROUTERS:  # in order: a path is matched against them in this order
        app.include_router(router)
    install_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_CSP})

    return app


def create_app_from_environment() -> FastAPI:
    """The app for one of several server processes (``paperscope serve --workers N``): each
    reads its settings from the environment the parent prepared."""
    return create_app(runtime_settings())
