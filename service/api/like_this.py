"""Unfiltered like-this by id, answered before FastAPI's routing.

``GET /api/v1/papers/{id}/similar`` with at most ``k`` and ``offset`` is the busiest route and a
lookup of precomputed neighbours, yet through FastAPI it cost about 700 µs of CPU here: more than
half of it solving the route's parameters and dependencies, a fifth building the hits. This
middleware answers exactly that request from the served engine, with the encoded answers of
recent requests kept per build (and per state of the papers added or deleted since, the
engine's ``version``), and hands everything else to the route unchanged: filters, values
it does not read as plain in-range integers, unknown ids, a server not ready. The route stays
the documented one (OpenAPI, errors); the answer is the same JSON (``tests/api``).

It sits innermost among the middlewares, so compression, CORS, the body limit and the request
id, security headers and metrics (under the route's own template) apply as to any answer.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.routes import search
from service.api.routes.search import SimilarResults
from service.errors import PaperscopeError
from service.query.engine import Engine
from service.schemas import MAX_K, MAX_OFFSET, MAX_PAPER_ID_CHARS

PATH = re.compile(r"^/api/v1/papers/(?P<paper_id>.+)/similar$")
"""The route's path (``{paper_id:path}``: an id may hold slashes)."""
ROUTE_PATH = "/api/v1/papers/{paper_id:path}/similar"
CACHED_ANSWERS = 4096
"""Encoded answers kept (about 3.5 KB each at k = 10)."""
_HEADERS = [(b"content-type", b"application/json")]


def plain_request(scope: Scope) -> tuple[str, int, int] | None:
    """(paper id, k, offset) when the request is one this path answers, else None."""
    if scope["method"] != "GET":
        return None
    matched = PATH.match(scope["path"])
    if matched is None or len(matched["paper_id"]) > MAX_PAPER_ID_CHARS:
        return None
    k, offset = 10, 0
    raw: bytes = scope.get("query_string", b"")
    if raw:
        seen: set[str] = set()
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            plain = value.isascii() and value.isdigit() and len(value) <= 6
            if name in seen or name not in ("k", "offset") or not plain:
                return None  # filters, repeats and anything to validate: the route's job
            seen.add(name)
            if name == "k":
                k = int(value)
            else:
                offset = int(value)
        if not (1 <= k <= MAX_K and offset <= MAX_OFFSET):
            return None
    return matched["paper_id"], k, offset


class LikeThisFastPath:
    """The middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._answers: dict[tuple[str, int, int], bytes] = {}
        self._answers_of: tuple[Engine, int] | None = None
        """The engine and its version the kept answers belong to."""
        self._route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = plain_request(scope) if scope["type"] == "http" else None
        engine = scope["app"].state.paperscope.served() if wanted is not None else None
        if wanted is None or engine is None:
            await self.app(scope, receive, send)
            return
        try:
            body = self._answer(engine, *wanted)
        except PaperscopeError:  # an unknown id: the route answers it (404, the error shape)
            await self.app(scope, receive, send)
            return
        scope["route"] = self._similar_route()  # for the metrics' route label
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _answer(self, engine: Engine, paper_id: str, k: int, offset: int) -> bytes:
        kept_for = self._answers_of
        version = engine.version
        if kept_for is None or kept_for[0] is not engine or kept_for[1] != version:
            self._answers, self._answers_of = {}, (engine, version)
        key = (paper_id, k, offset)
        body = self._answers.get(key)
        if body is None:
            hits = engine.similar(paper_id, k, offset=offset)
            body = SimilarResults(paper_id=paper_id, results=hits).model_dump_json().encode()
            if len(self._answers) >= CACHED_ANSWERS:
                del self._answers[next(iter(self._answers))]  # the oldest
            self._answers[key] = body
        return body

    def _similar_route(self) -> Any:
        if self._route is None:
            routes = search.router.routes
            self._route = next(r for r in routes if getattr(r, "path", None) == ROUTE_PATH)
        return self._route
