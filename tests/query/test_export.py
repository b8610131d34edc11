"""Exports: the papers table (CSV, Parquet, JSON lines) with topics and map positions, and BibTeX
of any list that parses back with bibtexparser (and re-ingests as the same papers)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from bibtexparser.entrypoint import parse_string
from bibtexparser.library import Library
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from service.api.app import create_app
from service.embed.backends import Embedder
from service.ingest.bibtex import read_bibtex
from service.query.engine import Engine
from service.query.export import COLUMNS, FORMULA_START, bibtex, csv_text, records
from service.schemas import NOISE_TOPIC, Paper
from tests.helpers import assert_error, make_settings

KEY = "export key"


@pytest.fixture(scope="module")
def client(
    built_dir: Path, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("export")  # writes a collection: a private copy
    shutil.copytree(built_dir, data_dir, dirs_exist_ok=True, symlinks=True)
    with TestClient(create_app(make_settings(data_dir, api_key=KEY), embedder)) as test_client:
        yield test_client


def _export(client: TestClient, **params: str | int | bool) -> bytes:
    response = client.get("/api/v1/export/papers", params=params)
    assert response.status_code == 200, response.text
    return response.content


def test_the_table_in_every_format_agrees_with_the_map(client: TestClient) -> None:
    points = client.get("/api/v1/map").json()
    table = list(csv.DictReader(io.StringIO(_export(client, format="csv").decode())))
    assert tuple(table[0]) == COLUMNS
    assert [r["id"] for r in table] == points["ids"]
    lines = [json.loads(line) for line in _export(client, format="jsonl").splitlines()]
    frame = pq.read_table(io.BytesIO(_export(client, format="parquet"))).to_pylist()
    assert [r["id"] for r in lines] == [r["id"] for r in frame] == points["ids"]
    for i, (row, line, record) in enumerate(zip(table, lines, frame, strict=True)):
        assert int(row["topic_id"]) == line["topic_id"] == record["topic_id"] == points["topic"][i]
        assert line["outlier"] == record["outlier"] == points["outlier"][i]
        assert line["x"] == pytest.approx(points["x"][i], abs=1e-3)
        assert record["y"] == pytest.approx(points["y"][i], abs=1e-3)
        assert row["title"] == line["title"] == record["title"]
    labels = {t["id"]: t["name"] for t in client.get("/api/v1/topics").json()}
    assert all(line["topic_name"] == labels[line["topic_id"]] for line in lines)


def _parsed(text: bytes) -> Library:
    library = parse_string(text.decode())
    assert not library.failed_blocks
    return library


def test_bibtex_of_search_hits_a_topic_and_a_collection(client: TestClient) -> None:
    hits = client.get("/api/v1/search", params={"q": "diffusion", "k": 7}).json()["results"]
    library = _parsed(_export(client, format="bibtex", q="diffusion", k=7))
    assert [e.key for e in library.entries] == [h["id"] for h in hits]
    first = client.get(f"/api/v1/papers/{hits[0]['id']}").json()
    assert library.entries[0].fields_dict["title"].value == first["title"]
    assert library.entries[0].fields_dict["abstract"].value == first["abstract"]

    topic = client.get("/api/v1/topics").json()[0]
    members = client.get(f"/api/v1/topics/{topic['id']}", params={"limit": 10_000}).json()
    library = _parsed(_export(client, format="bibtex", topic=topic["id"]))
    assert [e.key for e in library.entries] == [p["id"] for p in members["papers"]]

    seeds = [h["id"] for h in hits[:2]]
    put = client.put(
        "/api/v1/collections/exported", json={"positive": seeds}, headers={"X-API-Key": KEY}
    )
    assert put.is_success
    library = _parsed(_export(client, format="bibtex", collection="exported"))
    assert [e.key for e in library.entries] == seeds
    feed = client.get("/api/v1/collections/exported/feed", params={"limit": 5}).json()
    library = _parsed(_export(client, format="bibtex", collection="exported", feed=True, k=5))
    assert [e.key for e in library.entries] == [r["id"] for r in feed["results"]]


def test_bad_exports_get_the_error_envelope(client: TestClient) -> None:
    cases: list[tuple[dict[str, str | int | bool], int, str]] = [
        ({"format": "xlsx"}, 422, "invalid_input"),
        ({"q": "x", "k": 0}, 422, "invalid_input"),
        ({"collection": "nope"}, 404, "not_found"),
        ({"topic": 999_999}, 404, "not_found"),
    ]
    for params, status, code in cases:
        assert_error(client.get("/api/v1/export/papers", params=params), status, code)
    topic = client.get("/api/v1/topics").json()[0]
    members = client.get(f"/api/v1/topics/{topic['id']}", params={"limit": 10_000}).json()
    both = _parsed(_export(client, format="bibtex", q="learning", topic=topic["id"]))
    hits = client.get("/api/v1/search", params={"q": "learning", "k": 100}).json()["results"]
    in_topic = {p["id"] for p in members["papers"]}
    assert [e.key for e in both.entries] == [h["id"] for h in hits if h["id"] in in_topic]
    nothing = _export(client, format="csv", categories="no.such")
    assert nothing.decode().splitlines() == [",".join(COLUMNS)]


def test_exported_bibtex_reingests_as_the_same_papers(tmp_path: Path) -> None:
    papers = [
        Paper(
            id="2401.00001",
            title="Braces {and} back\\slashes, commas",
            abstract="An abstract with {unbalanced braces and 50% odd # characters.",
            authors=["Ada Lovelace", "Alan Turing"],
            categories=["cs.LG", "stat.ML"],
            date="2024-03-01",
        ),
        Paper(id="hep-th/9901001", title="Old id", abstract="Slash in the id."),
    ]
    path = tmp_path / "out.bib"
    path.write_text(bibtex(papers))
    back = [p for p in read_bibtex(path) if isinstance(p, Paper)]
    assert [p.id for p in back] == [p.id for p in papers]
    assert back[0].authors == papers[0].authors and back[0].date == "2024-03-01"
    assert back[1].abstract == "Slash in the id."


any_text = st.text(st.characters(codec="utf-8"), max_size=60)
"""Every character a stored paper could hold (lone surrogates cannot be stored)."""


@given(
    st.lists(
        st.builds(
            Paper,
            id=st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
            title=any_text.filter(str.strip),
            abstract=any_text.filter(str.strip),
            authors=st.lists(any_text, max_size=3),
            categories=st.lists(any_text, max_size=3),
            date=st.one_of(st.none(), any_text, st.dates().map(str)),
        ),
        max_size=5,
    )
)
def test_any_papers_give_bibtex_that_parses_back(papers: list[Paper]) -> None:
    """Any stored text (control characters, NUL, braces, odd ids, bad old dates) gives BibTeX
    with balanced braces that parses back entry for entry."""
    text = bibtex(papers)
    assert text.count("{") == text.count("}")
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)
    library = parse_string(text)
    assert not library.failed_blocks
    assert len(library.entries) == len(papers)


table_rows = st.lists(
    st.fixed_dictionaries(
        {
            "id": any_text,
            "title": any_text,
            "date": st.one_of(st.none(), any_text),
            "categories": st.lists(any_text.filter(lambda c: ";" not in c), max_size=3),
            "topic_id": st.integers(-1, 10_000),
            "topic_name": any_text,
            "outlier": st.booleans(),
            "x": st.floats(-1e6, 1e6),
            "y": st.floats(-1e6, 1e6),
        }
    ),
    max_size=8,
)


@given(table_rows)
def test_csv_parses_back_with_formula_cells_neutralised(table: list[dict[str, Any]]) -> None:
    """Any text in: the CSV parses back to the same rows, text cells starting with = + - @ tab
    or CR prefixed with ' (OWASP), numbers (negative x, topic -1) kept as numbers."""
    parsed = list(csv.DictReader(io.StringIO(csv_text(table, header=True), newline="")))
    assert len(parsed) == len(table)
    for row, back in zip(table, parsed, strict=True):
        texts = {k: row[k] or "" for k in ("id", "title", "date", "topic_name")}
        texts["categories"] = ";".join(row["categories"])
        for key, value in texts.items():
            expected = "'" + value if value.startswith(FORMULA_START) else value
            assert back[key] == expected
            assert not back[key].startswith(FORMULA_START)
        assert int(back["topic_id"]) == row["topic_id"]
        assert (float(back["x"]), float(back["y"])) == (row["x"], row["y"])
        assert back["outlier"] == str(row["outlier"])


def test_the_outlier_column_is_the_papers_own_flag(engine: Engine) -> None:
    """HDBSCAN's outliers are exported as outliers, assigned to a topic or not."""
    points = engine.map_points()
    rows = {r["id"]: r for r in records(engine.view, list(range(engine.size)))}
    assigned = [t != NOISE_TOPIC for t, o in zip(points.topic, points.outlier, strict=True) if o]
    assert any(assigned)  # outliers assigned to a topic are still flagged
    for paper_id, flag in zip(points.ids, points.outlier, strict=True):
        assert rows[paper_id]["outlier"] is flag
