"""Writes need the API key; a deleted paper disappears at once and stays gone after a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.embed.backends import Embedder
from service.store import Store
from tests.helpers import assert_error, make_settings

KEY = "correct horse battery staple"
HEADERS = {"X-API-Key": KEY}


def _client(data_dir: Path, embedder: Embedder, **settings: object) -> TestClient:
    return TestClient(create_app(make_settings(data_dir, **settings), embedder))


def test_writes_are_disabled_without_a_configured_key(built_copy: Path, embedder: Embedder) -> None:
    with _client(built_copy, embedder) as client:
        paper_id = client.get("/api/v1/topics").json()[0]["representative"][0]["id"]
        error = assert_error(client.delete(f"/api/v1/papers/{paper_id}"), 403, "writes_disabled")
        assert "PAPERSCOPE_API_KEY" in error["message"]
        assert client.get(f"/api/v1/papers/{paper_id}").status_code == 200  # nothing changed


def test_wrong_or_missing_key_is_refused_and_changes_nothing(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder, api_key=KEY) as client:
        paper_id = client.get("/api/v1/topics").json()[0]["representative"][0]["id"]
        assert_error(client.delete(f"/api/v1/papers/{paper_id}"), 401, "unauthorized")
        wrong = client.delete(f"/api/v1/papers/{paper_id}", headers={"X-API-Key": KEY + "x"})
        assert_error(wrong, 401, "unauthorized")
        assert client.get(f"/api/v1/papers/{paper_id}").status_code == 200
    with Store(make_settings(built_copy).db_path) as store:
        assert store.get(paper_id) is not None


def test_delete_hides_the_paper_at_once_and_after_a_restart(
    built_copy: Path, embedder: Embedder
) -> None:
    headers = {"X-API-Key": KEY}
    with _client(built_copy, embedder, api_key=KEY) as client:
        topics = client.get("/api/v1/topics").json()
        victim = topics[0]["representative"][0]
        title = victim["title"]
        assert (
            client.get("/api/v1/search", params={"q": title}).json()["results"][0]["id"]
            == (victim["id"])
        )
        assert client.delete(f"/api/v1/papers/{victim['id']}", headers=headers).status_code == 204
        assert_error(client.get(f"/api/v1/papers/{victim['id']}"), 404, "not_found")
        results = client.get("/api/v1/search", params={"q": title, "k": 100}).json()["results"]
        assert victim["id"] not in [hit["id"] for hit in results]
        assert len(results) == 100
        neighbour = results[0]["id"]
        similar = client.get(f"/api/v1/papers/{neighbour}/similar", params={"k": 20}).json()
        assert victim["id"] not in [hit["id"] for hit in similar["results"]]
        assert victim["id"] not in client.get("/api/v1/map").json()["ids"]
        after = {t["id"]: t["size"] for t in client.get("/api/v1/topics").json()}
        assert after[topics[0]["id"]] == topics[0]["size"] - 1
        assert_error(
            client.delete(f"/api/v1/papers/{victim['id']}", headers=headers), 404, "not_found"
        )
    with _client(built_copy, embedder, api_key=KEY) as restarted:
        assert_error(restarted.get(f"/api/v1/papers/{victim['id']}"), 404, "not_found")
        assert len(restarted.get("/api/v1/map").json()["ids"]) == 114


def test_oversized_bodies_are_refused_before_reading(built_copy: Path, embedder: Embedder) -> None:
    with _client(built_copy, embedder, api_key=KEY, max_body_bytes=4096) as client:
        paper_id = client.get("/api/v1/topics").json()[0]["representative"][0]["id"]
        big = client.request(
            "DELETE",
            f"/api/v1/papers/{paper_id}",
            content=b"x" * 10_000,
            headers={"X-API-Key": KEY},
        )
        assert_error(big, 413, "too_large")
        assert client.get(f"/api/v1/papers/{paper_id}").status_code == 200


def _largest_documented_post(too_long_last: bool) -> bytes:
    """1,000 papers with 50,000-character abstracts (the documented maximum of POST /papers);
    the last abstract one character too long, so the route answers 422 once it has read and
    checked every paper, instead of embedding 50 MB of text."""
    papers = [
        {"id": f"big-{i}", "title": f"Paper {i}", "abstract": "word " * 10_000} for i in range(1000)
    ]
    if too_long_last:
        papers[-1]["abstract"] += "x"
    return json.dumps({"papers": papers}).encode()


def test_the_documented_largest_post_is_read_with_the_key(
    built_copy: Path, embedder: Embedder
) -> None:
    body = _largest_documented_post(too_long_last=True)
    assert len(body) > 50_000_000
    json_body = {"Content-Type": "application/json"}
    with _client(built_copy, embedder, api_key=KEY) as client:
        read = client.post("/api/v1/papers", content=body, headers={**HEADERS, **json_body})
        error = assert_error(read, 422, "invalid_input")
        assert error["details"][0]["location"] == "body.papers.999.abstract"
        # without the key it is refused before it is read
        assert_error(
            client.post("/api/v1/papers", content=body, headers=json_body), 401, "unauthorized"
        )
        # a body that size anywhere else: 413
        other = client.post("/api/v1/recommend", content=body[:10_000_000], headers=json_body)
        assert_error(other, 413, "too_large")
    with _client(built_copy, embedder) as client:  # no key configured: no writes
        refused = client.post("/api/v1/papers", content=body, headers=json_body)
        assert_error(refused, 403, "writes_disabled")


def test_add_papers_has_its_own_limit(built_copy: Path, embedder: Embedder) -> None:
    limits = {"max_body_bytes": 4096, "max_papers_body_bytes": 20_000}
    with _client(built_copy, embedder, api_key=KEY, **limits) as client:
        paper = {**NEW_PAPER, "abstract": f"{NEW_PAPER['abstract']}{' More.' * 1000}"}
        body = json.dumps({"papers": [paper]}).encode()
        assert 4096 < len(body) < 20_000
        headers = {**HEADERS, "Content-Type": "application/json"}
        added = client.post("/api/v1/papers", content=body, headers=headers)
        assert added.status_code == 200, added.text
        elsewhere = client.post("/api/v1/recommend", content=body, headers=headers)
        assert_error(elsewhere, 413, "too_large")
        over = client.post("/api/v1/papers", content=b" " * 20_001, headers=HEADERS)
        assert_error(over, 413, "too_large")
        assert "20000 bytes" in over.json()["error"]["message"]


NEW_PAPER = {
    "title": "Learned step schedules for few-step diffusion sampling",
    "abstract": (
        "Diffusion models need many denoising steps. We learn a step schedule that cuts "
        "sampling to eight steps while keeping FID, by distilling the probability-flow ODE."
    ),
    "categories": ["cs.CV"],
    "date": "2026-11-01",
}


def test_posting_papers_needs_the_key(built_copy: Path, embedder: Embedder) -> None:
    body = {"papers": [NEW_PAPER]}
    with _client(built_copy, embedder) as client:
        assert_error(client.post("/api/v1/papers", json=body), 403, "writes_disabled")
    with _client(built_copy, embedder, api_key=KEY) as client:
        assert_error(client.post("/api/v1/papers", json=body), 401, "unauthorized")
        assert client.get("/api/v1/ready").json()["added_live"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"papers": []},
        {"papers": [{"title": "only a title"}]},
        {"papers": [{**NEW_PAPER, "title": "   "}]},
        {"papers": [{**NEW_PAPER, "date": "November"}]},
        {"papers": [NEW_PAPER, NEW_PAPER]},
        [NEW_PAPER],
    ],
)
def test_bad_posts_get_422_and_change_nothing(
    built_copy: Path, embedder: Embedder, body: object
) -> None:
    with _client(built_copy, embedder, api_key=KEY) as client:
        assert_error(
            client.post("/api/v1/papers", json=body, headers=HEADERS), 422, "invalid_input"
        )
        assert client.get("/api/v1/ready").json()["added_live"] == 0
    with Store(make_settings(built_copy).db_path) as store:
        assert store.count() == 115


def test_posted_papers_are_searchable_at_once_and_after_a_restart(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder, api_key=KEY) as client:
        posted = client.post("/api/v1/papers", json={"papers": [NEW_PAPER]}, headers=HEADERS)
        assert posted.status_code == 200, posted.text
        added = posted.json()["papers"][0]
        assert added["outcome"] == "new" and added["placed"] is True
        results = client.get("/api/v1/search", params={"q": NEW_PAPER["title"], "k": 3}).json()
        assert results["results"][0]["id"] == added["id"]
        paper = client.get(f"/api/v1/papers/{added['id']}").json()
        assert paper["topic_id"] == added["topic_id"] and paper["source"] == "api"
        assert added["id"] in client.get("/api/v1/map").json()["ids"]
        emerging = client.get("/api/v1/topics/emerging").json()
        assert emerging["added_since_build"] == 1
        assert client.get("/api/v1/ready").json()["added_live"] == 1
    with _client(built_copy, embedder, api_key=KEY) as restarted:
        assert restarted.get(f"/api/v1/papers/{added['id']}").json()["title"] == NEW_PAPER["title"]
        assert restarted.delete(f"/api/v1/papers/{added['id']}", headers=HEADERS).status_code == 204
        assert_error(restarted.get(f"/api/v1/papers/{added['id']}"), 404, "not_found")
        assert restarted.get("/api/v1/topics/emerging").json()["added_since_build"] == 0


def test_a_posted_paper_without_a_title_gets_one_from_its_abstract(
    built_copy: Path, embedder: Embedder
) -> None:
    abstract = (
        "Randomised trial of early mobilisation after hip fracture surgery in older adults. "
        "Patients who walked on day one went home two days sooner."
    )
    with _client(built_copy, embedder, api_key=KEY) as client:
        posted = client.post(
            "/api/v1/papers", json={"papers": [{"abstract": abstract}]}, headers=HEADERS
        )
        assert posted.status_code == 200, posted.text
        paper_id = posted.json()["papers"][0]["id"]
        paper = client.get(f"/api/v1/papers/{paper_id}").json()
        assert paper["title"] == (
            "Randomised trial of early mobilisation after hip fracture surgery in older adults"
        )
        assert paper["title_derived"] is True
        titled = client.get("/api/v1/topics").json()[0]["representative"][0]["id"]
        assert client.get(f"/api/v1/papers/{titled}").json()["title_derived"] is False
        hits = client.get("/api/v1/search", params={"q": "hip fracture mobilisation"}).json()
        assert hits["results"][0]["id"] == paper_id


BAD_DATES = ["0000-00-00", "9999-12-31", "2025-13-45", "31/12/2025", "2025-02-29", "soon"]


def test_posted_dates_are_real_days_and_text_is_cleaned(
    built_copy: Path, embedder: Embedder
) -> None:
    """Bad dates and text that is nothing once cleaned get 422 naming the field; every date form
    the ingest takes is stored as YYYY-MM-DD; control characters are dropped."""
    with _client(built_copy, embedder, api_key=KEY) as client:
        for day in BAD_DATES:
            bad = client.post(
                "/api/v1/papers", json={"papers": [{**NEW_PAPER, "date": day}]}, headers=HEADERS
            )
            error = assert_error(bad, 422, "invalid_input")
            assert error["details"][0]["location"] == "body.papers.0.date", day
            assert repr(day) in error["message"] or "outside" in error["message"]
        for field in ("title", "abstract", "id"):
            blank = {"papers": [{**NEW_PAPER, field: "\x00\x01\u0085"}]}
            assert_error(
                client.post("/api/v1/papers", json=blank, headers=HEADERS), 422, "invalid_input"
            )
        assert client.get("/api/v1/ready").json()["added_live"] == 0
        odd = {
            **NEW_PAPER,
            "id": "odd\x00-id",
            "title": '=HYPERLINK(\x01"x")\n<script>',
            "date": "Mon, 2 Apr 2007 19:18:42 GMT",
            "categories": ["cs.\x07LG", "\x00"],
        }
        posted = client.post(
            "/api/v1/papers", json={"papers": [odd, {**NEW_PAPER, "date": "2024"}]}, headers=HEADERS
        )
        assert posted.status_code == 200, posted.text
        paper = client.get("/api/v1/papers/odd-id").json()
        assert paper["title"] == '=HYPERLINK("x") <script>'
        assert (paper["date"], paper["categories"]) == ("2007-04-02", ["cs.LG"])
    with Store(make_settings(built_copy).db_path) as store:
        stored = store.get(posted.json()["papers"][1]["id"])
        assert stored is not None and stored.date == "2024-01-01"
