"""HTTP routes under /api/v1, one router per OpenAPI tag. Each route translates HTTP into a call
on the application (:class:`Paperscope`) or the engine of the build being served, and back."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.routes import (
    collections,
    digests,
    exports,
    maps,
    papers,
    search,
    status,
    topics,
)

ROUTERS: tuple[APIRouter, ...] = (
    status.router,
    search.router,  # before papers: /papers/{id}/similar must match before /papers/{id}
    papers.router,
    topics.router,
    maps.router,
    collections.router,
    digests.router,
    exports.router,
)
"""Every router, in the order the app includes them: a path is matched in this order."""
