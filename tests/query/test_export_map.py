"""The exported map's data: every paper drawn (live additions included) has its abstract and
neighbours, indexed like the map's arrays."""

from __future__ import annotations

import json
from pathlib import Path

from service.embed.backends import Embedder
from service.query.export_map import _inline_json, export_map, offline_payload
from service.schemas import Paper
from service.store import Store
from tests.helpers import make_settings
from tests.query.test_live import DIFFUSION, GEOLOGY, _open


def test_inline_json_cannot_break_out_of_its_script_tag() -> None:
    hostile = {"title": "</script><!--<script>alert(1)</script>"}
    inlined = _inline_json(hostile)
    assert "<" not in inlined
    assert json.loads(inlined) == hostile


def test_live_additions_are_exported_with_abstracts_and_neighbours(
    built_copy: Path, embedder: Embedder
) -> None:
    engine, live = _open(built_copy, embedder)
    replaced = engine.paper(engine.paper_ids[3])
    changed = Paper(
        **{**replaced.model_dump(include=set(Paper.model_fields)), "abstract": "a new abstract"}
    )
    live.add(engine, [DIFFUSION, GEOLOGY, changed])  # two new papers, one build paper replaced
    deleted = engine.paper_ids[7]
    with Store(make_settings(built_copy).db_path) as store:
        assert store.delete(deleted)
    engine.hide([deleted])  # rows hidden before a live paper: the arrays shift

    payload = offline_payload(engine, neighbours=5)
    points = payload["map"]
    assert isinstance(points, dict)
    ids, neighbours, abstracts = points["ids"], payload["neighbors"], payload["abstracts"]
    assert isinstance(neighbours, list) and isinstance(abstracts, list)
    assert len(ids) == len(neighbours) == len(abstracts) == engine.visible_count
    meta = payload["meta"]
    assert isinstance(meta, dict) and meta["papers"] == engine.visible_count
    assert deleted not in ids
    for paper in (DIFFUSION, GEOLOGY, changed):
        assert abstracts[ids.index(paper.id)] == paper.abstract
    # each paper's neighbours are the ones the server answers, as positions in the arrays
    for position, paper_id in enumerate(ids):
        listed = [ids[other] for other, _ in neighbours[position]]
        assert listed == [h.id for h in engine.similar(paper_id, 5)], paper_id
        assert abstracts[position] == engine.paper(paper_id).abstract


def test_export_map_writes_the_live_papers(built_copy: Path, embedder: Embedder) -> None:
    engine, live = _open(built_copy, embedder)
    live.add(engine, [GEOLOGY])
    target = built_copy / "map.html"
    export_map(engine, target, neighbours=3)
    html = target.read_text(encoding="utf-8")
    assert GEOLOGY.abstract in html
    assert 'src="static/' not in html  # everything inlined
