"""FastAPI app factory: loads the published build at startup and serves API + map page."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from service import __version__
from service.api.errors import install_error_handlers
from service.api.routes import router
from service.build import current_build_dir
from service.config import Settings
from service.embed import Embedder, load_embedder
from service.engine import Engine
from service.errors import PaperscopeError

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


def open_engine(settings: Settings, embedder: Embedder) -> tuple[Engine | None, str]:
    """The engine over the published build, or None and the reason it cannot serve.

    The server stays up either way: /api/v1/ready answers 503 with the reason (no build yet, or a
    build made with another model), which is clearer than a process that dies at start.
    """
    build = current_build_dir(settings.builds_dir)
    if build is None:
        reason = f"no build in {settings.data_dir} yet; run: paperscope build"
        log.warning("%s", reason)
        return None, reason
    try:
        engine = Engine(build, embedder)
    except PaperscopeError as err:
        log.error("cannot serve build %s: %s", build.name, err.message)
        return None, err.message
    log.info("serving build %s (%d papers)", build.name, engine.size)
    return engine, ""


def create_app(settings: Settings, embedder: Embedder | None = None) -> FastAPI:
    """Build the app. ``embedder`` may be passed in (tests share one); else it is loaded here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model = embedder or load_embedder(settings)
        model.encode(["warm up"])  # first call pays tokenizer / graph set-up, not the first user
        app.state.engine, app.state.not_ready_reason = open_engine(settings, model)
        yield
        if app.state.engine is not None:
            app.state.engine.close()

    app = FastAPI(
        title="paperscope",
        version=__version__,
        description="Semantic search and topic maps for scientific paper abstracts.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = None
    app.state.not_ready_reason = "starting up"
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    install_error_handlers(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
