"""Prometheus metrics at ``GET /metrics`` (prometheus-client).

- ``paperscope_http_requests_total`` and ``paperscope_http_request_seconds``: per route template
  (``/api/v1/papers/{paper_id:path}``, not the raw path, so ids do not explode the label set),
  method and status, counted by :class:`service.api.edge.Edge` (``PAPERSCOPE_METRICS=false``:
  neither counted nor served);
- the served state, read from the answering process's engine at scrape time:
  ``paperscope_build_info`` (build id and model as labels), ``paperscope_papers`` (answered now),
  ``paperscope_build_papers``, ``paperscope_topics``, ``paperscope_live_additions`` and
  ``paperscope_build_stage_seconds`` (the manifest's ``stage_seconds``).

With ``serve --workers N`` the serve command points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
folder before the workers start, so request metrics are summed over every worker whichever one
answers the scrape (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from service.app import Paperscope
from service.query.engine import Engine

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REQUESTS = Counter(
    "paperscope_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "paperscope_http_request_seconds",
    "Time to answer an HTTP request (until the response starts), by route template and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


_Children = tuple[Any, Any]
_children: dict[tuple[str, str, int], _Children] = {}
"""(route template, method, status) -> its counter and histogram children: ``labels()``
checks and converts its arguments on every call, a dictionary lookup does not."""


def observe(scope: Scope, status: int, seconds: float) -> None:
    """Count one answered request by the route it matched (``unmatched`` when none did)."""
    route: Any = scope.get("route")
    template = getattr(route, "path", None) or "unmatched"
    method = str(scope.get("method", ""))
    key = (template, method, status)
    children = _children.get(key)
    if children is None:
        children = REQUESTS.labels(template, method, str(status)), LATENCY.labels(template, method)
        _children[key] = children
    children[0].inc()
    children[1].observe(seconds)


class ServedState(Collector):
    """What the answering process serves, read when scraped."""

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        engine = self.engine
        ready = GaugeMetricFamily("paperscope_ready", "1 when a build is served, else 0.")
        ready.add_metric([], 0 if engine is None else 1)
        yield ready
        if engine is None:
            return
        manifest = engine.manifest
        info = InfoMetricFamily("paperscope_build", "The build being served.")
        info.add_metric([], {"build_id": manifest.build_id, "model": manifest.model.name})
        yield info
        for name, text, value in (
            (
                "paperscope_papers",
                "Papers answered now (build and live, less deleted).",
                engine.visible_count,
            ),
            ("paperscope_build_papers", "Papers in the served build.", engine.size),
            ("paperscope_topics", "Topics of the served build.", manifest.n_topics),
            (
                "paperscope_live_additions",
                "Papers added live since the build.",
                len(engine.live.papers),
            ),
        ):
            gauge = GaugeMetricFamily(name, text)
            gauge.add_metric([], value)
            yield gauge
        stages = GaugeMetricFamily(
            "paperscope_build_stage_seconds",
            "Seconds each stage of the served build took (the manifest's stage_seconds).",
            labels=["stage"],
        )
        for stage, seconds in manifest.stage_seconds.items():
            stages.add_metric([stage], seconds)
        yield stages


async def metrics(request: Request) -> Response:
    """The Prometheus text exposition: request metrics (of every worker in multiprocess mode)
    and the served state."""
    if os.environ.get(MULTIPROC_ENV):
        requests = CollectorRegistry()
        multiprocess.MultiProcessCollector(requests)  # type: ignore[no-untyped-call]
    else:
        requests = REGISTRY
    state = CollectorRegistry()
    app: Paperscope = request.app.state.paperscope
    state.register(ServedState(app.served()))
    body = generate_latest(requests) + generate_latest(state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
