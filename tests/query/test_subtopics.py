"""Sub-topics on request: split by HDBSCAN within a topic, stored by their papers, served by the
API across restarts and incremental builds; bad ids and missing keys get the error envelope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.embed.backends import Embedder
from service.pipeline.pipeline import run_build
from service.query.subtopics import cluster_within
from service.schemas import Paper
from service.store import Store
from service.topics.naming import covered
from tests.helpers import assert_error, make_settings

KEY = "correct horse battery staple"
HEADERS = {"X-API-Key": KEY}


def _client(data_dir: Path, embedder: Embedder) -> TestClient:
    return TestClient(create_app(make_settings(data_dir, api_key=KEY), embedder))


def _members(subtopics: list[dict[str, Any]]) -> dict[int, set[str]]:
    return {s["id"]: {p["id"] for p in s["papers"]} for s in subtopics}


def test_within_a_topic_hdbscan_finds_its_parts_and_places_every_paper() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(2, 32))
    parts = [c + 0.05 * rng.normal(size=(n, 32)) for c, n in zip(centres, (14, 9), strict=True)]
    vectors = np.vstack(parts).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = cluster_within(vectors)
    assert labels is not None and sorted(set(labels.tolist())) == [0, 1]
    assert labels[:14].tolist() == [0] * 14 and labels[14:].tolist() == [1] * 9  # largest is 0
    assert cluster_within(np.tile(vectors[:1], (8, 1))) is None  # nothing to split


def test_split_is_stored_and_survives_a_restart_and_an_incremental_build(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        topic = client.get("/api/v1/topics").json()[0]
        assert client.get(f"/api/v1/topics/{topic['id']}").json()["subtopics"] == []
        response = client.post(f"/api/v1/topics/{topic['id']}/split", headers=HEADERS)
        assert response.status_code == 200, response.text
        split = response.json()["subtopics"]
        assert len(split) >= 2
        assert sum(s["size"] for s in split) == topic["size"]  # every member in one sub-topic
        assert all(s["name"] and s["keywords"] for s in split)
        assert not any(covered(s["name"], topic["name"]) for s in split)  # never the topic's name
        assert [s["size"] for s in split] == sorted((s["size"] for s in split), reverse=True)
        assert client.get(f"/api/v1/topics/{topic['id']}").json()["subtopics"] == split
    with _client(built_copy, embedder) as restarted:
        assert restarted.get(f"/api/v1/topics/{topic['id']}").json()["subtopics"] == split

    # an incremental build adds a paper to the topic: the split still applies, ids kept
    first = split[0]["papers"][0]
    with Store(make_settings(built_copy).db_path) as store:
        seed = store.get(first["id"])
        assert seed is not None
        store.add_live(
            [Paper(id="extra-1", title=seed.title + " revisited", abstract=seed.abstract)], []
        )
    _, manifest, made = run_build(make_settings(built_copy), lambda: embedder, progress=False)
    assert made and manifest.fit is not None and manifest.fit.mode == "incremental"
    with _client(built_copy, embedder) as rebuilt:
        detail = rebuilt.get(f"/api/v1/topics/{topic['id']}").json()
        after = detail["subtopics"]
        assert [s["id"] for s in after] == [s["id"] for s in split]
        assert [s["name"] for s in after] == [s["name"] for s in split]
        before_members, after_members = _members(split), _members(after)
        for sub in before_members:
            assert before_members[sub] <= after_members[sub]  # nobody moved
        assert sum(s["size"] for s in after) == detail["size"]
        if detail["size"] > topic["size"]:  # the new paper joined its topic: and a sub-topic
            assert "extra-1" in set().union(*after_members.values())


def test_splitting_again_replaces_the_split(built_copy: Path, embedder: Embedder) -> None:
    with _client(built_copy, embedder) as client:
        topic_id = client.get("/api/v1/topics").json()[0]["id"]
        for _ in range(2):
            assert (
                client.post(f"/api/v1/topics/{topic_id}/split", headers=HEADERS).status_code == 200
            )
    with Store(make_settings(built_copy).db_path) as store:
        assert len(store.splits()) == 1


def test_split_needs_the_key_and_a_real_topic(built_copy: Path, embedder: Embedder) -> None:
    with _client(built_copy, embedder) as client:
        topic_id = client.get("/api/v1/topics").json()[0]["id"]
        assert_error(client.post(f"/api/v1/topics/{topic_id}/split"), 401, "unauthorized")
        wrong = {"X-API-Key": KEY + "x"}
        assert_error(
            client.post(f"/api/v1/topics/{topic_id}/split", headers=wrong), 401, "unauthorized"
        )
        assert_error(client.post("/api/v1/topics/99999/split", headers=HEADERS), 404, "not_found")
        assert_error(client.get("/api/v1/topics/99999"), 404, "not_found")
        assert_error(client.post("/api/v1/topics/-1/split", headers=HEADERS), 422, "invalid_input")
        assert client.get(f"/api/v1/topics/{topic_id}").json()["subtopics"] == []
    no_key = TestClient(create_app(make_settings(built_copy), embedder))
    with no_key as client:
        assert_error(client.post(f"/api/v1/topics/{topic_id}/split"), 403, "writes_disabled")
