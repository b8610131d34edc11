"""Saved collections through the API: writes need the key, reads are open; the feed ranks new
papers by the collection's recommend (JSON and Atom); collections outlive deletions of their
papers, restarts and rebuilds."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from service.api.app import create_app
from service.config import load_settings
from service.embed.backends import Embedder
from service.errors import InvalidInput
from service.pipeline.pipeline import run_build
from service.query.collections import atom
from service.sanitize import xml_text
from service.schemas import Feed, Reason, Recommendation
from tests.helpers import assert_error, make_settings

KEY = "collections key"
HEADERS = {"X-API-Key": KEY}
ATOM = "{http://www.w3.org/2005/Atom}"

NEW_PAPERS = [
    {
        "id": "new-distill",
        "title": "Teacher-student distillation with optimal transport for compact language models",
        "abstract": "We distil a large teacher language model into a small student by matching "
        "their output distributions with an optimal transport (Sinkhorn) loss, which beats "
        "KL-divergence distillation on reasoning benchmarks at one tenth of the parameters.",
        "categories": ["cs.CL"],
    },
    {
        "id": "new-rivers",
        "title": "Bedload transport in braided Himalayan rivers",
        "abstract": "We measure bedload sediment flux in braided river channels draining the "
        "Himalayan front with repeat lidar surveys and seismic monitoring.",
    },
    {
        "id": "new-seen",
        "title": "Knowledge distillation of small language models from large teachers",
        "abstract": "Knowledge distillation compresses a large teacher language model into a "
        "small student model; we study which teacher signals transfer reasoning ability.",
    },
]


def _client(data_dir: Path, embedder: Embedder) -> TestClient:
    return TestClient(create_app(make_settings(data_dir, api_key=KEY), embedder))


def _distillation_seeds(client: TestClient) -> list[str]:
    hits = client.get("/api/v1/search", params={"q": "knowledge distillation", "k": 2}).json()
    return [hit["id"] for hit in hits["results"]]


def test_collections_are_written_with_the_key_and_read_openly(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        seeds = _distillation_seeds(client)
        body = {"positive": seeds, "note": "distillation"}
        assert_error(client.put("/api/v1/collections/reading", json=body), 401, "unauthorized")
        assert_error(client.get("/api/v1/collections/reading"), 404, "not_found")
        created = client.put("/api/v1/collections/reading", json=body, headers=HEADERS)
        assert created.status_code == 201, created.text
        saved = client.get("/api/v1/collections/reading").json()
        assert saved["positive"] == seeds and saved["note"] == "distillation"
        assert saved["missing"] == [] and saved["negative"] == []
        replaced = client.put(
            "/api/v1/collections/reading",
            json={"positive": seeds[:1], "negative": seeds[1:]},
            headers=HEADERS,
        )
        assert replaced.status_code == 200
        assert replaced.json()["created_at"] == saved["created_at"]
        assert [c["name"] for c in client.get("/api/v1/collections").json()] == ["reading"]
        bad_seed = {"positive": ["no-such-paper"]}
        response = client.put("/api/v1/collections/other", json=bad_seed, headers=HEADERS)
        assert_error(response, 422, "invalid_input")
        both = {"positive": seeds[:1], "negative": seeds[:1]}
        response = client.put("/api/v1/collections/other", json=both, headers=HEADERS)
        assert_error(response, 422, "invalid_input")
        response = client.put("/api/v1/collections/bad name!", json=body, headers=HEADERS)
        assert_error(response, 422, "invalid_input")
        assert_error(client.delete("/api/v1/collections/reading"), 401, "unauthorized")
        assert client.delete("/api/v1/collections/reading", headers=HEADERS).status_code == 204
        assert_error(client.get("/api/v1/collections/reading/feed"), 404, "not_found")
        response = client.delete("/api/v1/collections/reading", headers=HEADERS)
        assert_error(response, 404, "not_found")


def _entries(atom: bytes) -> list[dict[str, Any]]:
    root = ET.fromstring(atom)  # noqa: S314 - our own document
    assert root.tag == f"{ATOM}feed" and root.find(f"{ATOM}title") is not None
    return [
        {
            "id": entry.findtext(f"{ATOM}id"),
            "title": entry.findtext(f"{ATOM}title"),
            "summary": entry.findtext(f"{ATOM}summary"),
        }
        for entry in root.findall(f"{ATOM}entry")
    ]


def test_feed_ranks_new_papers_without_seeds_or_seen_ones(
    built_copy: Path, embedder: Embedder
) -> None:
    today = datetime.now(UTC).date().isoformat()
    with _client(built_copy, embedder) as client:
        seeds = _distillation_seeds(client)
        body = {"positive": seeds, "seen": ["new-seen"], "note": "distillation"}
        assert client.put("/api/v1/collections/kd", json=body, headers=HEADERS).is_success
        added = client.post("/api/v1/papers", json={"papers": NEW_PAPERS}, headers=HEADERS)
        assert added.status_code == 200, added.text
        feed = client.get("/api/v1/collections/kd/feed", params={"since": today})
        assert feed.status_code == 200, feed.text
        results = feed.json()["results"]
        # Only papers added today (the build's papers have no date), seen ones left out.
        assert [r["id"] for r in results] == ["new-distill", "new-rivers"]
        assert results[0]["reason"]["closest_seed"] in seeds
        assert "distillation" in results[0]["reason"]["terms"]
        everything = client.get("/api/v1/collections/kd/feed", params={"limit": 100}).json()
        ids = [r["id"] for r in everything["results"]]
        assert len(ids) == 100 and not set(ids) & {*seeds, "new-seen"}
        future = client.get("/api/v1/collections/kd/feed", params={"since": "2999-01-01"})
        assert future.status_code == 200 and future.json()["results"] == []
        bad = client.get("/api/v1/collections/kd/feed", params={"since": "2025-02-30"})
        assert_error(bad, 422, "invalid_input")

        exported = client.get(
            "/api/v1/export/papers",
            params={"format": "jsonl", "collection": "kd", "feed": True, "since": today},
        )
        assert [json.loads(line)["id"] for line in exported.text.splitlines()] == [
            r["id"] for r in results
        ]

        atom = client.get("/api/v1/collections/kd/feed.atom", params={"since": today})
        assert atom.status_code == 200
        assert atom.headers["content-type"].startswith("application/atom+xml")
        entries = _entries(atom.content)
        assert [e["title"] for e in entries] == [r["title"] for r in results]
        assert entries[0]["id"].endswith("/api/v1/papers/new-distill")
        assert "like " in entries[0]["summary"]


def _links(atom: bytes) -> list[str]:
    root = ET.fromstring(atom)  # noqa: S314 - our own document
    found = [link.get("href", "") for link in root.iter(f"{ATOM}link")]
    return found + [i.text or "" for i in root.iter(f"{ATOM}id")]


def test_feed_links_use_the_public_url_never_the_host_header(
    built_copy: Path, embedder: Embedder
) -> None:
    forged = {"Host": "evil.example"}
    with _client(built_copy, embedder) as client:
        seeds = _distillation_seeds(client)
        saved = client.put("/api/v1/collections/kd", json={"positive": seeds}, headers=HEADERS)
        assert saved.status_code == 201, saved.text
        links = _links(client.get("/api/v1/collections/kd/feed.atom", headers=forged).content)
        assert len(links) >= 10
        # the address the request came in on (the test client's "server")
        assert all(link.startswith("http://testserver/") for link in links), links
        assert "http://testserver/api/v1/collections/kd/feed.atom" in links
    public = "https://papers.example.org/scope"
    settings = make_settings(built_copy, api_key=KEY, public_url=public)
    with TestClient(create_app(settings, embedder)) as client:
        atom = client.get("/api/v1/collections/kd/feed.atom", headers=forged).content
        links = _links(atom)
        assert all(link.startswith(f"{public}/") for link in links), links
        assert f"{public}/api/v1/collections/kd/feed.atom" in links
        assert any(link.startswith(f"{public}/#paper=") for link in links)


def test_public_url_must_be_an_address() -> None:
    for bad in ("papers.example.org", "ftp://x/", "https://x/?a=1", "https://"):
        with pytest.raises(InvalidInput, match="public_url"):
            load_settings(public_url=bad)
    assert load_settings(public_url="https://x.org/a").public_url == "https://x.org/a/"


def test_collections_outlive_deleted_seeds_restarts_and_rebuilds(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        seeds = _distillation_seeds(client)
        body = {"positive": seeds, "note": "kept"}
        assert client.put("/api/v1/collections/kept", json=body, headers=HEADERS).is_success
        assert client.delete(f"/api/v1/papers/{seeds[0]}", headers=HEADERS).status_code == 204
        assert client.get("/api/v1/collections/kept").json()["missing"] == [seeds[0]]
        feed = client.get("/api/v1/collections/kept/feed").json()
        assert feed["missing"] == [seeds[0]] and len(feed["results"]) == 20
        assert client.delete(f"/api/v1/papers/{seeds[1]}", headers=HEADERS).status_code == 204
        empty = client.get("/api/v1/collections/kept/feed")
        assert empty.status_code == 200 and empty.json()["results"] == []
        assert empty.json()["missing"] == seeds
    run_build(make_settings(built_copy), lambda: embedder, progress=False)
    with _client(built_copy, embedder) as restarted:
        kept = restarted.get("/api/v1/collections/kept").json()
        assert kept["positive"] == seeds and kept["note"] == "kept"
        assert kept["missing"] == seeds


any_text = st.text(st.characters(codec="utf-8"), max_size=40)
recommendations = st.builds(
    Recommendation,
    id=any_text.filter(bool),
    title=any_text,
    score=st.floats(-1, 1),
    date=st.one_of(st.none(), any_text),
    categories=st.lists(any_text, max_size=3),
    topic_id=st.integers(-1, 50),
    topic_label=any_text,
    reason=st.builds(
        Reason,
        closest_seed=any_text,
        seed_similarity=st.floats(-1, 1),
        shared_topic=st.none(),
        shared_topic_label=st.one_of(st.none(), any_text),
        terms=st.lists(any_text, max_size=3),
    ),
)


@given(st.lists(recommendations, max_size=4), any_text)
def test_atom_is_well_formed_xml_for_any_text(results: list[Recommendation], note: str) -> None:
    """Control characters and NUL (which XML 1.0 cannot hold) in titles, categories, reasons and
    the note are stripped, never a 500; markup stays text."""
    feed = Feed(collection="c-1", since=None, missing=[], results=results)
    entries = _entries(atom(feed, "http://localhost:8000/", note))
    assert len(entries) == len(results)
    for entry, paper in zip(entries, results, strict=True):
        assert entry["title"] == (xml_text(paper.title).strip() or "(untitled)")
