"""Like-this by id, answered before FastAPI's routing.

``GET /api/v1/papers/{id}/similar`` is the busiest route. Unfiltered it is a lookup of
precomputed neighbours, yet through FastAPI it cost about 700 µs of CPU here: more than half of
it solving the route's parameters and dependencies, a fifth building the hits; filtered (a
float16 shortlist of the allowed rows) FastAPI's share was still about 40%. This middleware
answers the request from the served engine when every parameter is plainly valid (``k`` and
``offset`` as in-range integers, ``since``/``until`` as YYYY-MM-DD dates, ``categories``,
``topics`` as in-range integers), keeps the encoded answers of recent unfiltered requests per
build (and per state of the papers added or deleted since, the engine's ``version``), and
hands everything else to the route unchanged: values to validate, repeats, unknown parameters
and ids, a server not ready. The route stays the documented one (OpenAPI, errors); the answer
is the same JSON (``tests/api``).

It sits innermost among the middlewares, so compression, CORS, the body limit and the request
id, security headers and metrics (under the route's own template) apply as to any answer.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.routes import search
from service.api.routes.search import SimilarResults
from service.api.slots import run_scan
from service.errors import PaperscopeError
from service.query.engine import Engine
from service.schemas import (
    MAX_K,
    MAX_OFFSET,
    MAX_PAPER_ID_CHARS,
    NO_FILTER,
    TOPIC_ID_LIMIT,
    PaperFilter,
)

PATH = re.compile(r"^/api/v1/papers/(?P<paper_id>.+)/similar$")
"""The route's path (``{paper_id:path}``: an id may hold slashes)."""
ROUTE_PATH = "/api/v1/papers/{paper_id:path}/similar"
CACHED_ANSWERS = 4096
"""Encoded answers kept (about 3.5 KB each at k = 10)."""
_HEADERS = [(b"content-type", b"application/json")]


class LikeThis(NamedTuple):
    """A like-this request this path answers."""

    paper_id: str
    k: int = 10
    offset: int = 0
    filters: PaperFilter = NO_FILTER


def plain_request(scope: Scope) -> LikeThis | None:
    """The request when it is one this path answers, else None."""
    if scope["method"] != "GET":
        return None
    matched = PATH.match(scope["path"])
    if matched is None or len(matched["paper_id"]) > MAX_PAPER_ID_CHARS:
        return None
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return LikeThis(matched["paper_id"])
    read = _read_parameters(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
    if read is None:
        return None
    k, offset, filters = read
    return LikeThis(matched["paper_id"], k, offset, filters)


def _read_parameters(pairs: list[tuple[str, str]]) -> tuple[int, int, PaperFilter] | None:
    """k, offset and the filter when each value is plainly valid, else None (the route's)."""
    single: dict[str, str] = {}
    lists: dict[str, list[str]] = {"categories": [], "topics": []}
    for name, value in pairs:
        if name in lists:
            lists[name].append(value)
        elif name in _SINGLE and name not in single and _SINGLE[name].fullmatch(value):
            single[name] = value
        else:
            return None  # unknown, repeated or to validate
    k, offset = int(single.get("k", 10)), int(single.get("offset", 0))
    if not (1 <= k <= MAX_K and offset <= MAX_OFFSET):
        return None
    topics = lists["topics"]
    if not (topics or lists["categories"] or "since" in single or "until" in single):
        return k, offset, NO_FILTER
    if not all(_TOPIC.fullmatch(t) and -TOPIC_ID_LIMIT <= int(t) < TOPIC_ID_LIMIT for t in topics):
        return None
    try:
        for day in ("since", "until"):
            if day in single:
                date.fromisoformat(single[day])
        filters = PaperFilter(
            since=single.get("since"),
            until=single.get("until"),
            categories=lists["categories"],
            topics=[int(t) for t in topics],
        )
    except ValueError:  # an impossible date, too many values (ValidationError is one)
        return None
    return k, offset, filters


_NUMBER = re.compile(r"[0-9]{1,6}")  # ASCII only: "²" is a digit to str.isdigit
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TOPIC = re.compile(r"-?[0-9]{1,10}")
_SINGLE = {"k": _NUMBER, "offset": _NUMBER, "since": _DAY, "until": _DAY}


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
            body = await run_scan(engine.scan_size(wanted.filters), self._answer, engine, wanted)
        except PaperscopeError:  # an unknown id: the route answers it (404, the error shape)
            await self.app(scope, receive, send)
            return
        scope["route"] = self._similar_route()  # for the metrics' route label
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _answer(self, engine: Engine, wanted: LikeThis) -> bytes:
        if wanted.filters.given:  # a scan: not kept (every filter would be a new entry)
            return self._encoded(engine, wanted)
        kept_for = self._answers_of
        version = engine.version
        if kept_for is None or kept_for[0] is not engine or kept_for[1] != version:
            self._answers, self._answers_of = {}, (engine, version)
        key = (wanted.paper_id, wanted.k, wanted.offset)
        body = self._answers.get(key)
        if body is None:
            body = self._encoded(engine, wanted)
            if len(self._answers) >= CACHED_ANSWERS:
                del self._answers[next(iter(self._answers))]  # the oldest
            self._answers[key] = body
        return body

    @staticmethod
    def _encoded(engine: Engine, wanted: LikeThis) -> bytes:
        paper_id, k, offset, filters = wanted
        hits = engine.similar(paper_id, k, filters, offset)
        return SimilarResults(paper_id=paper_id, results=hits).model_dump_json().encode()

    def _similar_route(self) -> Any:
        if self._route is None:
            routes = search.router.routes
            self._route = next(r for r in routes if getattr(r, "path", None) == ROUTE_PATH)
        return self._route
