from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.artifacts import current_build_dir
from service.embed.backends import Embedder
from tests.helpers import TREND_DATES, assert_error, make_settings


@pytest.fixture(scope="module")
def client(built_dir: Path, embedder: Embedder) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(built_dir), embedder)) as test_client:
        yield test_client


def _some_id(client: TestClient) -> str:
    return str(client.get("/api/v1/topics").json()[0]["representative"][0]["id"])


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    ready = client.get("/api/v1/ready").json()
    assert ready["ready"] is True and ready["papers"] == 115
    assert ready["model"] == "all-MiniLM-L6-v2"
    assert ready["last_synced"] is None  # never synced (paperscope sync)


def test_paper_and_similar(client: TestClient) -> None:
    paper_id = _some_id(client)
    paper = client.get(f"/api/v1/papers/{paper_id}").json()
    assert paper["id"] == paper_id and paper["abstract"]
    similar = client.get(f"/api/v1/papers/{paper_id}/similar", params={"k": 5}).json()
    assert similar["paper_id"] == paper_id
    assert len(similar["results"]) == 5
    assert paper_id not in [hit["id"] for hit in similar["results"]]


def test_search(client: TestClient) -> None:
    body = client.get("/api/v1/search", params={"q": "hallucination in vision-language models"})
    results = body.json()["results"]
    assert len(results) == 10
    assert any("hallucination" in r["title"].lower() for r in results[:3])


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_search_modes(client: TestClient, mode: str) -> None:
    body = client.get("/api/v1/search", params={"q": "Sinkhorn distillation", "mode": mode})
    assert body.status_code == 200, body.text
    results = body.json()["results"]
    titles = [r["title"] for r in results]
    # Dense search alone ranks other distillation papers first; the exact term decides the rest.
    sinkhorn = "Sinkhorn Distance Minimization for Knowledge Distillation"
    assert titles[0] == sinkhorn if mode != "dense" else sinkhorn in titles
    assert (results[0]["dense_score"] is not None) == (mode != "lexical")
    assert (results[0]["lexical_score"] is not None) == (mode != "dense")


def test_search_default_mode_is_the_configured_one(client: TestClient) -> None:
    default = client.get("/api/v1/search", params={"q": "preference alignment"}).json()
    hybrid = client.get("/api/v1/search", params={"q": "preference alignment", "mode": "hybrid"})
    assert default == hybrid.json()


def test_topics_and_topic(client: TestClient) -> None:
    topics = client.get("/api/v1/topics").json()
    assert sum(t["size"] for t in topics) == 115
    detail = client.get(f"/api/v1/topics/{topics[0]['id']}", params={"limit": 2}).json()
    assert len(detail["papers"]) == 2 and detail["label"] == topics[0]["label"]
    assert detail["previous_build"] is None  # the first build of this corpus: no lineage yet
    assert detail["parents"] == [] and detail["children"] == []


def test_map_is_columnar(client: TestClient) -> None:
    response = client.get("/api/v1/map")
    assert response.headers["content-encoding"] == "gzip"
    points = response.json()
    per_paper = ["ids", "x", "y", "topic", "title", "date", "category"]
    assert len({len(points[column]) for column in per_paper}) == 1
    assert len(points["ids"]) == 115
    assert all(0.0 <= v <= 1.0 for v in points["x"] + points["y"])
    topic_sizes = {t["id"]: t["size"] for t in points["topics"]}
    assert sum(topic_sizes.values()) == 115
    assert all(points["topic"].count(t) == n for t, n in topic_sizes.items())
    assert {c for g in points["groups"] for c in g["children"]} <= set(topic_sizes)
    plain = client.get("/api/v1/map", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.json() == points


def test_build_manifest(client: TestClient) -> None:
    manifest = client.get("/api/v1/build").json()
    assert manifest["papers"] == 115 and manifest["model"]["dim"] == 384


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/api/v1/papers/no-such-paper", {}, 404, "not_found"),
        ("/api/v1/papers/no-such-paper/similar", {}, 404, "not_found"),
        ("/api/v1/topics/9999", {}, 404, "not_found"),
        ("/api/v1/topics/not-a-number", {}, 422, "invalid_input"),
        ("/api/v1/search", {}, 422, "invalid_input"),
        ("/api/v1/search", {"q": ""}, 422, "invalid_input"),
        ("/api/v1/search", {"q": "   "}, 422, "invalid_input"),
        ("/api/v1/search", {"q": "x", "k": 0}, 422, "invalid_input"),
        ("/api/v1/search", {"q": "x", "k": 10_000}, 422, "invalid_input"),
        ("/api/v1/search", {"q": "x", "k": "many"}, 422, "invalid_input"),
        ("/api/v1/search", {"q": "x" * 10_001}, 422, "invalid_input"),
        ("/api/v1/search", {"q": "x", "mode": "fuzzy"}, 422, "invalid_input"),
        ("/api/v1/search", {"q": "x", "topics": -(2**70)}, 422, "invalid_input"),  # was a 500
        ("/api/v1/papers/x/similar", {"topics": 2**31}, 422, "invalid_input"),
        ("/api/v1/no-such-route", {}, 404, "not_found"),
    ],
)
def test_errors_share_one_shape(
    client: TestClient, path: str, params: dict[str, Any], status: int, code: str
) -> None:
    assert_error(client.get(path, params=params), status, code)


def test_wrong_method_has_the_error_shape(client: TestClient) -> None:
    wrong = client.post("/api/v1/topics")
    assert_error(wrong, 405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET, HEAD"


def test_every_405_says_what_is_allowed(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()["paths"]
    for template, operations in spec.items():
        path = re.sub(r"\{[^}]+\}", "x", template)
        wrong = client.patch(path)  # no route takes PATCH
        assert_error(wrong, 405, "method_not_allowed")
        allowed = wrong.headers["allow"].split(", ")
        assert {m.upper() for m in operations} <= set(allowed), path
        assert ("GET" in allowed) == ("HEAD" in allowed), path
    # one path, a route per method: all of them
    assert client.post("/api/v1/collections/x").headers["allow"] == "GET, HEAD, PUT, DELETE"
    assert client.delete("/static/app.js").headers["allow"] == "GET, HEAD"  # static files


def test_no_build_answers_503(tmp_path: Path, embedder: Embedder) -> None:
    with TestClient(create_app(make_settings(tmp_path), embedder)) as empty:
        assert empty.get("/api/v1/health").status_code == 200
        error = assert_error(empty.get("/api/v1/ready"), 503, "not_ready")
        assert "paperscope build" in error["message"]
        assert_error(empty.get("/api/v1/search", params={"q": "x"}), 503, "not_ready")


def test_build_of_another_model_is_refused_with_reason(
    built_copy: Path, embedder: Embedder
) -> None:
    build = current_build_dir(built_copy / "builds")
    assert build is not None
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["model"]["dim"] = 768
    (build / "manifest.json").write_text(json.dumps(manifest))
    with TestClient(create_app(make_settings(built_copy), embedder)) as refused:
        error = assert_error(refused.get("/api/v1/ready"), 503, "not_ready")
        assert "configured model" in error["message"]


def test_docs_and_openapi(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/search", "/api/v1/topics", "/api/v1/map"} <= set(spec["paths"])


def _linked(html: str) -> list[str]:
    return re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)


def test_docs_come_from_this_server(client: TestClient) -> None:
    docs = client.get("/docs")
    linked = _linked(docs.text)
    assert len(linked) >= 4  # style sheet, icon, script, schema
    for url in linked:
        assert "//" not in url, url  # no other host (a CDN)
        assert client.get(f"/{url}").status_code == 200, url  # relative to /docs
    policy = docs.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy and "'unsafe-inline'" not in policy
    assert_error(client.get("/redoc"), 404, "not_found")  # not served (it would need a CDN)


def test_map_page_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "<title>paperscope</title>" in page.text
    for url in _linked(page.text):
        if not url.startswith("data:"):
            assert client.get(f"/{url}").status_code == 200, url
    assert 'api("/map")' in client.get("/static/app.js").text


def test_recommend_from_seeds_with_reasons(client: TestClient) -> None:
    seed = _some_id(client)
    body = {"positive": [{"id": seed}], "negative": [{"text": "speech recognition"}], "limit": 5}
    response = client.post("/api/v1/recommend", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 5 and seed not in [r["id"] for r in results]
    assert set(results[0]["reason"]) == {
        "closest_seed",
        "seed_similarity",
        "shared_topic",
        "shared_topic_label",
        "terms",
    }
    assert_error(
        client.post("/api/v1/recommend", json={"positive": [{"id": "nope"}]}), 404, "not_found"
    )
    bad_bodies: list[dict[str, object]] = [
        {"positive": []},
        {"positive": [{"id": seed, "text": "both"}]},
        {"positive": [{"id": seed}], "limit": 1000},
        {"positive": [{"id": seed}], "strategy": "magic"},
        {"positive": [{"id": seed}], "since": "yesterday"},
    ]
    for bad in bad_bodies:
        assert_error(client.post("/api/v1/recommend", json=bad), 422, "invalid_input")


def test_topic_levels_search_timeline_and_duplicates(client: TestClient) -> None:
    fine = client.get("/api/v1/topics").json()
    coarse = client.get("/api/v1/topics", params={"level": "coarse"}).json()
    assert sorted(c for g in coarse for c in g["subtopics"]) == sorted(
        t["id"] for t in fine if t["id"] != -1
    )
    assert_error(client.get("/api/v1/topics", params={"level": "medium"}), 422, "invalid_input")
    first = fine[0]
    found = client.get("/api/v1/topics/search", params={"q": " ".join(first["keywords"])}).json()
    assert first["id"] in [m["id"] for m in found[:3]]
    assert_error(client.get("/api/v1/topics/search", params={"q": " "}), 422, "invalid_input")
    line = client.get(f"/api/v1/topics/{first['id']}/timeline").json()
    assert (
        line["id"] == first["id"]
        and line["undated"] + sum(m["papers"] for m in line["months"]) == first["size"]
    )
    assert_error(client.get("/api/v1/topics/9999/timeline"), 404, "not_found")
    paper_id = first["representative"][0]["id"]
    dups = client.get(f"/api/v1/papers/{paper_id}/duplicates").json()
    assert dups["paper_id"] == paper_id and all(h["score"] >= 0.95 for h in dups["results"])
    assert isinstance(client.get("/api/v1/duplicates").json(), list)


def test_search_and_similar_take_the_shared_filters_and_paging(client: TestClient) -> None:
    topics = client.get("/api/v1/topics").json()
    wanted = [t["id"] for t in topics[:2]]
    size = sum(t["size"] for t in topics[:2])
    params: dict[str, Any] = {"q": "learning", "k": 100, "topics": wanted, "mode": "dense"}
    results = client.get("/api/v1/search", params=params).json()["results"]
    assert len(results) == size and {r["topic_id"] for r in results} == set(wanted)
    page = client.get("/api/v1/search", params={**params, "k": 5, "offset": 5}).json()
    assert [r["id"] for r in page["results"]] == [r["id"] for r in results[5:10]]
    paper_id = _some_id(client)
    similar = client.get(
        f"/api/v1/papers/{paper_id}/similar", params={"topics": wanted[1], "k": 3}
    ).json()["results"]
    assert len(similar) == 3 and {r["topic_id"] for r in similar} == {wanted[1]}
    nothing = client.get("/api/v1/search", params={"q": "learning", "categories": "no.such"})
    assert nothing.status_code == 200 and nothing.json()["results"] == []


@pytest.mark.parametrize("since", ["2025-13-01", "2025-02-30", "yesterday"])
def test_bad_filter_dates_are_422(client: TestClient, since: str) -> None:
    assert_error(
        client.get("/api/v1/search", params={"q": "x", "since": since}), 422, "invalid_input"
    )
    paper_id = _some_id(client)
    response = client.get(f"/api/v1/papers/{paper_id}/similar", params={"until": since})
    assert_error(response, 422, "invalid_input")


def test_trending_topics_of_the_bundled_corpus_and_months_is_checked(client: TestClient) -> None:
    response = client.get("/api/v1/topics/trending")  # every paper listed on one day: all new
    assert response.status_code == 200 and response.json()
    assert all(t["growth"] is None and t["earlier"] == 0 for t in response.json())
    for months in ("0", "121", "many"):
        response = client.get("/api/v1/topics/trending", params={"months": months})
        assert_error(response, 422, "invalid_input")


def test_trending_topics_by_hand(built_copy: Path, embedder: Embedder) -> None:
    key = {"X-API-Key": "trending-key"}
    app = create_app(make_settings(built_copy, api_key=key["X-API-Key"]), embedder)
    with TestClient(app) as writable:
        topics = [t for t in writable.get("/api/v1/topics").json() if t["id"] != -1][:3]
        posted, topic_of = [], {}
        for topic, (kind, days) in zip(topics, TREND_DATES.items(), strict=True):
            # the topic's most confidently placed papers: placed again, they stay in it on any
            # CPU (a borderline paper may move when the runtime rounds in bf16)
            refs = writable.get(f"/api/v1/topics/{topic['id']}", params={"limit": 100}).json()
            refs = sorted(refs["papers"], key=lambda r: (bool(r["outlier"]), -r["confidence"]))
            for ref, day in zip(refs[: len(days)], days, strict=True):
                paper = writable.get(f"/api/v1/papers/{ref['id']}").json()
                fields = ("id", "title", "abstract", "authors", "categories")
                posted.append({**{f: paper[f] for f in fields}, "date": day})
            topic_of[kind] = topic["id"]
        added = writable.post("/api/v1/papers", json={"papers": posted}, headers=key)
        assert added.status_code == 200, added.text
        assert [p["topic_id"] for p in added.json()["papers"]] == [
            topic_of[kind] for kind, days in TREND_DATES.items() for _ in days
        ]
        kept = {p["id"] for p in posted}  # the dated papers alone: the other bundled ones leave
        for paper_id in set(writable.get("/api/v1/map").json()["ids"]) - kept:
            assert writable.delete(f"/api/v1/papers/{paper_id}", headers=key).status_code == 204
        trending = writable.get("/api/v1/topics/trending", params={"months": 3}).json()
        names = {t["id"]: t["name"] for t in topics}
    assert trending == [
        {
            "id": topic_of["new"],
            "name": names[topic_of["new"]],
            "recent": 2,
            "earlier": 0,
            "share": 1.0,
            "recent_rate": 0.6667,
            "earlier_rate": 0.0,
            "growth": None,
        },
        {
            "id": topic_of["growing"],
            "name": names[topic_of["growing"]],
            "recent": 3,
            "earlier": 1,
            "share": 0.75,
            "recent_rate": 1.0,
            "earlier_rate": 0.3333,
            "growth": 3.0,
        },
        {
            "id": topic_of["shrinking"],
            "name": names[topic_of["shrinking"]],
            "recent": 1,
            "earlier": 3,
            "share": 0.25,
            "recent_rate": 0.3333,
            "earlier_rate": 1.0,
            "growth": 0.3333,
        },
    ]
