"""Curation that lasts: topics renamed, merged and papers moved through the API on a real build,
served at once (topic list, topic detail, map payload), kept across a restart, incremental and
full builds (slow tier), orphaned edits reported, undo; bad input gets the error envelope."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.app import Paperscope
from service.embed.backends import Embedder
from service.pipeline.pipeline import run_build
from service.schemas import Paper
from service.store import Store
from tests.helpers import assert_clean_failure, assert_error, make_settings, run

KEY = "correct horse battery staple"
HEADERS = {"X-API-Key": KEY}
API = "/api/v1"


def _client(data_dir: Path, embedder: Embedder) -> TestClient:
    return TestClient(create_app(make_settings(data_dir, api_key=KEY), embedder))


def _topics(client: TestClient) -> dict[int, dict[str, Any]]:
    return {t["id"]: t for t in client.get(f"{API}/topics").json()}


def _map_topics(client: TestClient) -> dict[int, dict[str, Any]]:
    return {t["id"]: t for t in client.get(f"{API}/map").json()["topics"]}


def _topic_of(client: TestClient, paper_id: str) -> int:
    return int(client.get(f"{API}/papers/{paper_id}").json()["topic_id"])


def _put(client: TestClient, topic: int, body: dict[str, Any]) -> Any:
    return client.put(f"{API}/topics/{topic}/name", json=body, headers=HEADERS)


def _merge(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post(f"{API}/topics/merge", json=body, headers=HEADERS)


def _move(client: TestClient, topic: int, paper_ids: list[str]) -> Any:
    return client.post(
        f"{API}/topics/{topic}/papers", json={"paper_ids": paper_ids}, headers=HEADERS
    )


def _curate(client: TestClient) -> dict[str, Any]:
    """Rename the largest topic, merge the 3rd into the 2nd, move a paper of the 4th into the
    largest; returns what was done."""
    listed = [t for t in client.get(f"{API}/topics").json() if t["id"] != -1]
    big, keep, gone, other = (t["id"] for t in listed[:4])
    moved = client.get(f"{API}/topics/{other}").json()["papers"][0]["id"]
    gone_papers = {p["id"] for p in client.get(f"{API}/topics/{gone}?limit=1000").json()["papers"]}
    renamed = client.put(f"{API}/topics/{big}/name", json={"name": "My field"}, headers=HEADERS)
    assert renamed.status_code == 200, renamed.text
    merged = client.post(
        f"{API}/topics/merge", json={"into": keep, "topics": [gone]}, headers=HEADERS
    )
    assert merged.status_code == 200, merged.text
    moving = client.post(f"{API}/topics/{big}/papers", json={"paper_ids": [moved]}, headers=HEADERS)
    assert moving.status_code == 200, moving.text
    assert [e.json()["kind"] for e in (renamed, merged, moving)] == ["rename", "merge", "move"]
    return {
        "big": big,
        "keep": keep,
        "gone": gone,
        "moved": moved,
        "gone_papers": gone_papers,
        "sizes": {t["id"]: t["size"] for t in listed},
    }


def _assert_curated(client: TestClient, done: dict[str, Any], merged_share: float = 1.0) -> None:
    """The edits hold: name shown and marked, merged topic absent and (at least
    ``merged_share`` of) its papers in the kept one, moved paper in its chosen topic; in the
    list, the detail and the map. A full rebuild re-clusters: the merge follows the new topic
    holding most of the merged papers, so some may land in other topics then."""
    topics, drawn = _topics(client), _map_topics(client)
    big, keep, gone = done["big"], done["keep"], done["gone"]
    assert topics[big]["name"] == "My field" and topics[big]["user_named"] is True
    assert drawn[big]["name"] == "My field" and drawn[big]["user_named"] is True
    assert not any(t["user_named"] for i, t in topics.items() if i != big)
    assert gone not in topics and gone not in drawn
    assert_error(client.get(f"{API}/topics/{gone}"), 404, "not_found")
    merged = list(done["gone_papers"])
    with_keep = sum(_topic_of(client, p) == keep for p in merged)
    assert with_keep >= merged_share * len(merged), (with_keep, len(merged))
    assert _topic_of(client, done["moved"]) == big
    detail = client.get(f"{API}/topics/{big}?limit=1000").json()
    assert detail["name"] == "My field" and done["moved"] in {p["id"] for p in detail["papers"]}
    points = client.get(f"{API}/map").json()
    at = points["ids"].index(done["moved"])
    assert points["topic"][at] == big
    assert gone not in set(points["topic"])
    assert all(gone not in g["children"] for g in points["groups"])
    hits = client.get(f"{API}/search", params={"q": "anything", "k": 100}).json()["results"]
    assert all(h["topic_id"] != gone for h in hits)
    # a topic filter follows the edits too
    dense: dict[str, str | int] = {"q": "anything", "k": 100, "mode": "dense"}
    in_big = client.get(f"{API}/search", params={**dense, "topics": big}).json()["results"]
    assert done["moved"] in {h["id"] for h in in_big}
    assert {h["topic_id"] for h in in_big} == {big}
    assert client.get(f"{API}/search", params={**dense, "topics": gone}).json()["results"] == []


def test_rename_merge_move_are_served_at_once_and_after_a_restart(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        done = _curate(client)
        _assert_curated(client, done)
        sizes = _topics(client)
        assert (
            sizes[done["keep"]]["size"] == done["sizes"][done["keep"]] + done["sizes"][done["gone"]]
        )
        edits = client.get(f"{API}/topics/edits").json()
        assert [e["kind"] for e in edits] == ["rename", "merge", "move"]
        assert all(e["status"] == "applied" and e["applied_to"] == e["topic"] for e in edits)
        build = client.get(f"{API}/ready").json()["build_id"]
        assert all([entry["build_id"] for entry in e["lineage"]] == [build] for e in edits)
        assert edits[1]["topics"] == [done["gone"]] and edits[2]["paper_ids"] == [done["moved"]]
    with _client(built_copy, embedder) as restarted:
        _assert_curated(restarted, done)


def test_undo_serves_the_topics_as_fitted_again(built_copy: Path, embedder: Embedder) -> None:
    with _client(built_copy, embedder) as client:
        before = client.get(f"{API}/topics").json()
        done = _curate(client)
        for edit in client.get(f"{API}/topics/edits").json():
            assert (
                client.delete(f"{API}/topics/edits/{edit['id']}", headers=HEADERS).status_code
                == 204
            )
        assert client.get(f"{API}/topics").json() == before
        assert done["gone"] in _map_topics(client)
        assert client.get(f"{API}/topics/edits").json() == []
        assert_error(client.delete(f"{API}/topics/edits/1", headers=HEADERS), 404, "not_found")


def test_a_later_rename_wins_and_live_papers_follow_a_merge(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        listed = [t for t in client.get(f"{API}/topics").json() if t["id"] != -1]
        keep, gone = listed[0]["id"], listed[1]["id"]
        for name in ("first", "second"):
            client.put(f"{API}/topics/{keep}/name", json={"name": name}, headers=HEADERS)
        assert _topics(client)[keep]["name"] == "second"
        client.post(f"{API}/topics/merge", json={"into": keep, "topics": [gone]}, headers=HEADERS)
        seed = client.get(f"{API}/topics/{gone}").status_code
        assert seed == 404
        # a paper posted now, copying a paper of the merged topic, is served in the kept one
        source = listed[1]["representative"][0]["id"]
        paper = client.get(f"{API}/papers/{source}").json()
        posted = {
            "id": "live-copy",
            "title": paper["title"] + " again",
            "abstract": paper["abstract"],
        }
        added = client.post(f"{API}/papers", json={"papers": [posted]}, headers=HEADERS)
        assert added.status_code in (200, 201), added.text
        assert _topic_of(client, "live-copy") != gone


def test_a_server_follows_edits_made_by_another_process(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        topic = next(t for t in client.get(f"{API}/topics").json() if t["id"] != -1)["id"]
        other = Paperscope(make_settings(built_copy))  # as the CLI or another worker does
        other.rename_topic(other.open_engine(with_model=False), topic, "From elsewhere")
        app: Paperscope = client.app.state.paperscope  # type: ignore[attr-defined]
        assert app.watcher is not None
        app.watcher.refresh()  # what its reload loop does every PAPERSCOPE_RELOAD_SECONDS
        assert _topics(client)[topic]["name"] == "From elsewhere"
        (edit,) = client.get(f"{API}/topics/edits").json()
        assert edit["status"] == "applied" and len(edit["lineage"]) == 1


def test_curation_needs_the_key_and_checks_its_input(built_copy: Path, embedder: Embedder) -> None:
    with _client(built_copy, embedder) as client:
        listed = [t for t in client.get(f"{API}/topics").json() if t["id"] != -1]
        a, b = listed[0]["id"], listed[1]["id"]
        paper = listed[0]["representative"][0]["id"]
        name = {"name": "x"}
        assert_error(client.put(f"{API}/topics/{a}/name", json=name), 401, "unauthorized")
        assert_error(
            client.post(f"{API}/topics/merge", json={"into": a, "topics": [b]}), 401, "unauthorized"
        )
        assert_error(
            client.post(f"{API}/topics/{a}/papers", json={"paper_ids": [paper]}),
            401,
            "unauthorized",
        )
        assert_error(client.delete(f"{API}/topics/edits/1"), 401, "unauthorized")
        assert_error(_put(client, 99999, name), 404, "not_found")
        assert_error(_put(client, -1, name), 422, "invalid_input")
        assert_error(_put(client, a, {"name": ""}), 422, "invalid_input")
        assert_error(_put(client, a, {"name": " \x00\x07 "}), 422, "invalid_input")
        assert_error(_put(client, a, {"name": "n" * 101}), 422, "invalid_input")
        assert_error(_put(client, a, {"name": "x", "extra": 1}), 422, "invalid_input")
        assert_error(_merge(client, {"into": a, "topics": [a]}), 422, "invalid_input")
        assert_error(_merge(client, {"into": a, "topics": [b, a]}), 422, "invalid_input")
        assert_error(_merge(client, {"into": a, "topics": []}), 422, "invalid_input")
        assert_error(_merge(client, {"into": a, "topics": [99999]}), 404, "not_found")
        assert_error(_merge(client, {"into": 99999, "topics": [a]}), 404, "not_found")
        assert_error(_merge(client, {"into": a, "topics": [-1]}), 422, "invalid_input")
        assert_error(_move(client, a, ["no-such-paper"]), 404, "not_found")
        assert_error(_move(client, 99999, [paper]), 404, "not_found")
        assert_error(_move(client, -1, [paper]), 422, "invalid_input")
        assert_error(_move(client, a, []), 422, "invalid_input")
        assert client.get(f"{API}/topics/edits").json() == []  # nothing was stored

        hostile = "<script>alert(1)</script>\u202e\x1b[31m  two\tlines\nhere"
        saved = _put(client, a, {"name": hostile})
        assert saved.status_code == 200, saved.text
        shown = _topics(client)[a]["name"]
        assert (
            shown == "<script>alert(1)</script>\u202e[31m two lines here"
        )  # controls out, one line
        assert _merge(client, {"into": b, "topics": [a]}).status_code == 200
        assert_error(_put(client, a, name), 404, "not_found")  # merged away: no longer a topic
    no_key = TestClient(create_app(make_settings(built_copy), embedder))
    with no_key as client:
        assert_error(client.put(f"{API}/topics/{b}/name", json=name), 403, "writes_disabled")


def test_the_cli_renames_merges_moves_lists_and_undoes(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        listed = [t for t in client.get(f"{API}/topics").json() if t["id"] != -1]
    a, b, c = (t["id"] for t in listed[:3])
    paper = listed[2]["representative"][0]["id"]
    for args in (
        ["rename", a, "Named here"],
        ["merge", a, b],
        ["move", a, paper],
    ):
        result = run("topics", *map(str, args), data_dir=built_copy)
        assert result.returncode == 0, result.stderr
    result = run("topics", "edits", "--json", data_dir=built_copy)
    assert result.returncode == 0, result.stderr
    edits = json.loads(result.stdout)
    assert [(e["kind"], e["status"]) for e in edits] == [
        ("rename", "applied"),
        ("merge", "applied"),
        ("move", "applied"),
    ]
    with _client(built_copy, embedder) as client:
        topics = _topics(client)
        assert topics[a]["name"] == "Named here" and topics[a]["user_named"]
        assert b not in topics and c in topics and _topic_of(client, paper) == a
    assert_clean_failure(run("topics", "merge", a, a, data_dir=built_copy), "into itself")
    assert_clean_failure(run("topics", "rename", a, " ", data_dir=built_copy), "bad topic name")
    assert run("topics", "undo", "1", data_dir=built_copy).returncode == 0
    assert_clean_failure(run("topics", "undo", "1", data_dir=built_copy), "no topic edit")


# -- across builds (slow: each makes a build) --------------------------------------------------


def _add_papers(data_dir: Path, seeds: list[str]) -> None:
    """Store a variant of each seed paper, as an ingest would (the next build includes them)."""
    with Store(make_settings(data_dir).db_path) as store:
        papers = []
        for i, seed_id in enumerate(seeds):
            seed = store.get(seed_id)
            assert seed is not None
            papers.append(
                Paper(id=f"extra-{i}", title=seed.title + " revisited", abstract=seed.abstract)
            )
        store.add_live(papers, [])


@pytest.mark.slow
def test_edits_hold_after_an_incremental_and_a_full_build(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        done = _curate(client)
        first_build = client.get(f"{API}/ready").json()["build_id"]
        seeds = [t["representative"][0]["id"] for t in client.get(f"{API}/topics").json()[:3]]
    settings = make_settings(built_copy)
    _add_papers(built_copy, seeds[:2])
    _, manifest, made = run_build(settings, lambda: embedder, progress=False)
    assert made and manifest.fit is not None and manifest.fit.mode == "incremental"
    with _client(built_copy, embedder) as client:
        _assert_curated(client, done)
        edits = client.get(f"{API}/topics/edits").json()
        assert all(e["status"] == "applied" for e in edits)
        assert all(
            [x["build_id"] for x in e["lineage"]] == [first_build, manifest.build_id] for e in edits
        )
    _add_papers(built_copy, seeds[2:])
    _, manifest, made = run_build(settings, lambda: embedder, force=True, progress=False)
    assert made and manifest.fit is not None and manifest.fit.mode != "incremental"
    with _client(built_copy, embedder) as client:
        _assert_curated(client, done, merged_share=0.5)
        edits = client.get(f"{API}/topics/edits").json()
        assert all(e["status"] == "applied" for e in edits), edits
        assert all(len(e["lineage"]) == 3 for e in edits)


@pytest.mark.slow
def test_a_renamed_topic_that_disappears_is_reported_orphaned(
    built_copy: Path, embedder: Embedder
) -> None:
    with _client(built_copy, embedder) as client:
        listed = [t for t in client.get(f"{API}/topics").json() if t["id"] != -1]
        small = listed[-1]
        client.put(f"{API}/topics/{small['id']}/name", json={"name": "Doomed"}, headers=HEADERS)
        members = [
            p["id"] for p in client.get(f"{API}/topics/{small['id']}?limit=1000").json()["papers"]
        ]
    with Store(make_settings(built_copy).db_path) as store:
        for paper_id in members:
            store.delete(paper_id)
    run_build(make_settings(built_copy), lambda: embedder, force=True, progress=False)
    with _client(built_copy, embedder) as client:
        (edit,) = client.get(f"{API}/topics/edits").json()
        assert edit["status"] == "orphaned" and edit["applied_to"] is None
        assert "gone" in edit["note"] and edit["lineage"][-1]["topic"] is None
        assert all(t["name"] != "Doomed" for t in client.get(f"{API}/topics").json())
        undone = client.delete(f"{API}/topics/edits/{edit['id']}", headers=HEADERS)
        assert undone.status_code == 204
        assert client.get(f"{API}/topics/edits").json() == []
