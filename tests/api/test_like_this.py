"""Like-this answered before FastAPI's routing: which requests it takes, that its answers are
the route's, and that they follow the papers deleted since they were kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.api import slots
from service.api.app import create_app
from service.api.like_this import LikeThis, LikeThisFastPath, plain_request
from service.embed.backends import Embedder
from service.query.engine import Engine
from service.schemas import Hit, PaperFilter
from tests.helpers import assert_error, make_settings

KEY = "correct horse battery staple"


def _scope(path: str, query: str = "", method: str = "GET") -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "query_string": query.encode()}


SIMILAR = "/api/v1/papers/p1/similar"


@pytest.mark.parametrize(
    ("path", "query", "wanted"),
    [
        (SIMILAR, "", LikeThis("p1")),
        (SIMILAR, "k=5&offset=20", LikeThis("p1", 5, 20)),
        ("/api/v1/papers/hep-th/9901001/similar", "k=100", LikeThis("hep-th/9901001", 100)),
        (SIMILAR, "categories=cs.LG", LikeThis("p1", filters=PaperFilter(categories=["cs.LG"]))),
        (
            SIMILAR,
            "k=3&categories=cs&categories=stat.ML&topics=-1&topics=12&since=2024-02-29",
            LikeThis(
                "p1",
                3,
                filters=PaperFilter(
                    categories=["cs", "stat.ML"], topics=[-1, 12], since="2024-02-29"
                ),
            ),
        ),
        (SIMILAR, "until=2025-12-31", LikeThis("p1", filters=PaperFilter(until="2025-12-31"))),
        (SIMILAR, "k=0", None),  # out of range: the route's 422
        (SIMILAR, "k=101", None),
        (SIMILAR, "offset=10001", None),
        (SIMILAR, "k=-1", None),
        (SIMILAR, "k=five", None),
        (SIMILAR, "k=", None),
        (SIMILAR, "k=5&k=6", None),
        (SIMILAR, "since=2024-01-01&since=2024-02-01", None),
        (SIMILAR, "since=2023-02-29", None),  # no such day
        (SIMILAR, "since=2024-1-05", None),
        (SIMILAR, "until=", None),
        (SIMILAR, "topics=", None),
        (SIMILAR, "topics=2147483648", None),  # past 32 bits
        (SIMILAR, "topics=1.5", None),
        (SIMILAR, "categories=" + "&categories=".join(["cs"] * 101), None),  # too many
        (SIMILAR, "mode=dense", None),  # not a parameter of this route
        (SIMILAR, "k=%C2%B2", None),  # "²" is a digit to str.isdigit
        ("/api/v1/papers//similar", "", None),
        ("/api/v1/papers/p1/duplicates", "", None),
        ("/api/v1/papers/" + "x" * 201 + "/similar", "", None),
    ],
)
def test_only_plainly_valid_requests_take_the_fast_path(
    path: str, query: str, wanted: LikeThis | None
) -> None:
    assert plain_request(_scope(path, query)) == wanted


def test_post_does_not_take_it() -> None:
    assert plain_request(_scope("/api/v1/papers/p1/similar", method="POST")) is None


def _without_fast_path(app: FastAPI) -> FastAPI:
    kept = [m for m in app.user_middleware if cast(object, m.cls) is not LikeThisFastPath]
    app.user_middleware = kept
    return app


@pytest.fixture(scope="module")
def clients(built_dir: Path, embedder: Embedder) -> Iterator[tuple[TestClient, TestClient]]:
    settings = make_settings(built_dir)
    fast = TestClient(create_app(settings, embedder))
    routed = TestClient(_without_fast_path(create_app(settings, embedder)))
    with fast, routed:
        yield fast, routed


def test_its_answers_are_the_routes_byte_for_byte(
    clients: tuple[TestClient, TestClient],
) -> None:
    fast, routed = clients
    ids = fast.get("/api/v1/map").json()["ids"][:12]
    for i, paper_id in enumerate(ids):
        params = {"k": 1 + (i * 7) % 30, "offset": i % 4}
        for _ in range(2):  # computed, then kept
            answer = fast.get(f"/api/v1/papers/{paper_id}/similar", params=params)
            expected = routed.get(f"/api/v1/papers/{paper_id}/similar", params=params)
            assert answer.status_code == expected.status_code == 200
            assert answer.content == expected.content
            assert answer.headers["content-type"] == expected.headers["content-type"]
            assert answer.headers["x-request-id"] and answer.headers["x-content-type-options"]


FILTERS: list[dict[str, str | list[str] | list[int] | int]] = [
    {"topics": [0, 1]},
    {"topics": [2], "k": 3, "offset": 1},
    {"topics": ["007"]},
    {"categories": ["cs.LG", ""]},
    {"since": "2024-01-01", "until": "2025-12-31"},
    {"categories": "cs", "topics": [-1, 0, 3, 5]},
]


@pytest.mark.parametrize("on_loop_rows", [20_000, -1])
def test_its_filtered_answers_are_the_routes_byte_for_byte(
    clients: tuple[TestClient, TestClient], on_loop_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the event loop (small scans), and in worker threads (larger ones: all, here)."""
    monkeypatch.setattr(slots, "ON_LOOP_ROWS", on_loop_rows)
    threads: set[str] = set()
    real_similar = Engine.similar

    def similar(self: Engine, *args: Any, **kwargs: Any) -> list[Hit]:
        threads.add(threading.current_thread().name)
        return real_similar(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "similar", similar)
    fast, routed = clients
    topics = {str(t["id"]) for t in fast.get("/api/v1/topics").json()}
    assert {"0", "1", "2"} <= topics  # the filters below keep papers
    ids = fast.get("/api/v1/map").json()["ids"][:6]
    for paper_id in ids:
        for params in FILTERS:
            url = f"/api/v1/papers/{paper_id}/similar"
            answer, expected = fast.get(url, params=params), routed.get(url, params=params)
            assert answer.status_code == expected.status_code == 200
            assert answer.content == expected.content
    some = routed.get(f"/api/v1/papers/{ids[0]}/similar", params={"topics": [0, 1]}).json()
    assert some["results"]
    in_workers = {name.startswith("AnyIO worker") for name in threads}
    assert in_workers == {on_loop_rows < 0}, threads


def test_what_it_hands_on_is_answered_by_the_route(
    clients: tuple[TestClient, TestClient],
) -> None:
    fast, _ = clients
    assert_error(fast.get("/api/v1/papers/no-such-paper/similar"), 404, "not_found")
    assert_error(fast.get("/api/v1/papers/x/similar", params={"k": 0}), 422, "invalid_input")
    paper_id = fast.get("/api/v1/map").json()["ids"][0]
    head = fast.head(f"/api/v1/papers/{paper_id}/similar")
    assert head.status_code == 200 and head.content == b""
    zipped = fast.get(
        f"/api/v1/papers/{paper_id}/similar",
        params={"k": 50},
        headers={"Accept-Encoding": "gzip"},
    )
    assert zipped.headers["content-encoding"] == "gzip"  # compression applies to it too
    assert len(zipped.json()["results"]) == 50
    assert int(zipped.headers["content-length"]) < len(zipped.content)  # the decoded body


def test_kept_answers_follow_a_deleted_paper(built_copy: Path, embedder: Embedder) -> None:
    settings = make_settings(built_copy, api_key=KEY)
    with TestClient(create_app(settings, embedder)) as client:
        paper_id = client.get("/api/v1/map").json()["ids"][3]
        url = f"/api/v1/papers/{paper_id}/similar"
        before = client.get(url).json()["results"]
        assert client.get(url).json()["results"] == before  # kept
        gone = before[0]["id"]
        deleted = client.delete(f"/api/v1/papers/{gone}", headers={"X-API-Key": KEY})
        assert deleted.status_code == 204
        after = client.get(url).json()["results"]
        assert gone not in [hit["id"] for hit in after]
        assert [hit["id"] for hit in after[:-1]] == [hit["id"] for hit in before[1:]]
