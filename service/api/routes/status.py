"""Routes tagged "service": liveness, readiness and the manifest of the build served."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.errors import ERROR_RESPONSES
from service.api.routes.deps import AppDep, EngineDep
from service.schemas import BuildManifest, Health, Ready

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


@router.get("/health", response_model=Health, tags=["service"])
async def health() -> Health:
    """Liveness: the process answers."""
    return Health()


@router.get("/ready", response_model=Ready, tags=["service"])
async def ready(engine: EngineDep, app: AppDep) -> Ready:
    """Readiness: a build is loaded (503 otherwise); ``note`` says if it is a fallback."""
    return app.ready(engine)


@router.get("/build", response_model=BuildManifest, tags=["service"])
def build_manifest(engine: EngineDep) -> BuildManifest:
    """The manifest of the build being served: model, parameters, stage times, versions."""
    return engine.manifest
