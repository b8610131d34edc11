"""Thumbs up and down through the API, on a real build of the bundled corpus: ratings need the
key, move papers into the collection's lists and out of its feed, and with three of each kind
switch the feed to the collection's classifier; "help me decide" lists what it is least sure
about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.api.app import create_app
from service.embed.backends import Embedder
from tests.helpers import assert_error, make_settings

KEY = "feedback key"
HEADERS = {"X-API-Key": KEY}
URL = "/api/v1/collections/diffusion"


def _client(data_dir: Path, embedder: Embedder) -> TestClient:
    return TestClient(create_app(make_settings(data_dir, api_key=KEY), embedder))


def _found(client: TestClient, q: str, k: int) -> list[str]:
    hits = client.get("/api/v1/search", params={"q": q, "k": k}).json()
    return [hit["id"] for hit in hits["results"]]


def _rate(client: TestClient, paper_id: str, rating: str) -> dict[str, Any]:
    answer = client.post(
        f"{URL}/feedback", json={"paper_id": paper_id, "rating": rating}, headers=HEADERS
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_feedback_needs_the_key_a_served_paper_and_a_collection(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        seed, other = _found(client, "diffusion models image generation", 2)
        body = {"paper_id": other, "rating": "up"}
        assert_error(client.post(f"{URL}/feedback", json=body, headers=HEADERS), 404, "not_found")
        client.put(URL, json={"positive": [seed]}, headers=HEADERS)
        assert_error(client.post(f"{URL}/feedback", json=body), 401, "unauthorized")
        unknown = {"paper_id": "no-such-paper", "rating": "up"}
        error = assert_error(
            client.post(f"{URL}/feedback", json=unknown, headers=HEADERS), 422, "invalid_input"
        )
        assert "no-such-paper" in error["message"]
        for bad in ({"paper_id": other, "rating": "meh"}, {"paper_id": other}, {"rating": "up"}):
            assert_error(
                client.post(f"{URL}/feedback", json=bad, headers=HEADERS), 422, "invalid_input"
            )
        assert client.get(URL).json()["positive"] == [seed]  # nothing refused was kept


def test_ratings_leave_the_feed_and_switch_it_to_the_classifier(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        diffusion = _found(client, "diffusion models for image generation", 4)
        other = _found(client, "reinforcement learning agents and policies", 3)
        client.put(URL, json={"positive": diffusion[:1]}, headers=HEADERS)
        feed = client.get(f"{URL}/feed").json()
        assert feed["ranking"] == "seeds" and "3 more thumbs down" in feed["ranking_note"]
        for paper_id in diffusion[1:3]:
            saved = _rate(client, paper_id, "up")
        for paper_id in other[:2]:
            saved = _rate(client, paper_id, "down")
        assert saved["positive"] == diffusion[:3] and saved["negative"] == other[:2]
        assert saved["seen"] == [*diffusion[1:3], *other[:2]]
        feed = client.get(f"{URL}/feed", params={"limit": 100}).json()
        assert feed["ranking"] == "seeds" and "1 more thumbs down" in feed["ranking_note"]
        listed = {r["id"] for r in feed["results"]}
        assert listed and not listed & {*diffusion[:3], *other[:2]}  # rated papers are seen
        _rate(client, other[2], "down")
        feed = client.get(f"{URL}/feed", params={"limit": 100}).json()
        assert feed["ranking"] == "classifier", feed["ranking_note"]
        assert "3 positive and 3 negative" in feed["ranking_note"]
        scores = [r["score"] for r in feed["results"]]
        assert scores == sorted(scores, reverse=True) and len(scores) == 100
        assert not {r["id"] for r in feed["results"]} & {*diffusion[:3], *other}
        assert diffusion[3] in [r["id"] for r in feed["results"][:10]]
        top = feed["results"][0]
        assert top["reason"]["closest_seed"] in diffusion[:3]
        _rate(client, diffusion[2], "down")  # changing one's mind: it moves to the negatives
        collection = client.get(URL).json()
        assert diffusion[2] in collection["negative"] and diffusion[2] not in collection["positive"]
        assert client.get(f"{URL}/feed").json()["ranking"] == "seeds"  # 2 positives: too few


def test_help_me_decide_lists_what_the_classifier_is_least_sure_about(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        diffusion = _found(client, "diffusion models for image generation", 3)
        other = _found(client, "reinforcement learning agents and policies", 3)
        client.put(URL, json={"positive": diffusion[:1]}, headers=HEADERS)
        early = client.get(f"{URL}/uncertain", params={"k": 5}).json()
        feed = client.get(f"{URL}/feed", params={"limit": 5}).json()
        assert early["ranking"] == "seeds" and "rate these" in early["ranking_note"]
        assert [r["id"] for r in early["results"]] == [r["id"] for r in feed["results"]]
        for paper_id in diffusion[1:]:
            _rate(client, paper_id, "up")
        for paper_id in other:
            _rate(client, paper_id, "down")
        unsure = client.get(f"{URL}/uncertain", params={"k": 8}).json()
        assert unsure["ranking"] == "classifier" and len(unsure["results"]) == 8
        margins = [abs(r["score"]) for r in unsure["results"]]
        assert margins == sorted(margins)
        every = client.get(f"{URL}/feed", params={"limit": 100}).json()["results"]
        assert min(abs(r["score"]) for r in every) >= margins[0]
        assert not {r["id"] for r in unsure["results"]} & {*diffusion, *other}
        assert_error(client.get(f"{URL}/uncertain", params={"k": 0}), 422, "invalid_input")
        assert_error(client.get("/api/v1/collections/none/uncertain"), 404, "not_found")
