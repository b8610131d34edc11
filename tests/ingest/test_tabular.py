from __future__ import annotations

import gzip
from pathlib import Path

from service.ingest import read_records
from service.schemas import Paper, Rejected
from tests.helpers import FIXTURES


def _split(path: Path) -> tuple[list[Paper], list[Rejected]]:
    records = list(read_records(path)[1])
    return (
        [r for r in records if isinstance(r, Paper)],
        [r for r in records if isinstance(r, Rejected)],
    )


def test_jsonl_maps_common_field_names() -> None:
    papers, _ = _split(FIXTURES / "papers.jsonl")
    by_id = {p.id: p for p in papers}
    assert set(by_id) == {"2503.00001", "2503.00002", "4983"}
    first = by_id["2503.00001"]
    assert first.categories == ["stat.ML", "cs.LG"]  # primary category first
    assert first.authors == ["A. Author", "B. Author", "C. Author"]
    assert first.date == "2025-03-04"
    assert by_id["2503.00002"].categories == ["cs.CV", "cs.AI"]
    assert by_id["2503.00002"].date == "2025-03-05"
    assert by_id["4983"].abstract  # BEIR layout: _id / text


def test_jsonl_bad_rows_are_reported_with_line_numbers() -> None:
    _, rejected = _split(FIXTURES / "papers.jsonl")
    reasons = {r.location: r.reason for r in rejected}
    assert reasons["line 3"] == "missing title"
    assert "not a JSON object" in reasons["line 5"]
    assert "line 6" in reasons


def test_gzipped_jsonl(tmp_path: Path) -> None:
    target = tmp_path / "papers.jsonl.gz"
    target.write_bytes(gzip.compress((FIXTURES / "papers.jsonl").read_bytes()))
    papers, _ = _split(target)
    assert len(papers) == 3


def test_jsonl_non_utf8_row_rejected_not_fatal(tmp_path: Path) -> None:
    target = tmp_path / "mixed.jsonl"
    good = (FIXTURES / "papers.jsonl").read_bytes().splitlines()[0]
    target.write_bytes(good + b"\n" + b'{"title": "caf\xe9"}\n')
    papers, rejected = _split(target)
    assert len(papers) == 1
    assert "not UTF-8" in rejected[0].reason


def test_csv() -> None:
    papers, rejected = _split(FIXTURES / "papers.csv")
    assert [p.id for p in papers] == ["c1"]
    assert papers[0].authors == ["Ada Lovelace", "Alan Turing"]
    assert rejected[0].reason == "missing abstract"


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    from service.errors import IngestError

    whole = gzip.compress((FIXTURES / "papers.jsonl").read_bytes() * 20)
    target = tmp_path / "cut.jsonl.gz"
    target.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(IngestError, match="truncated or corrupt"):
        list(read_records(target)[1])


def test_csv_accepts_abstracts_longer_than_the_csv_module_default(tmp_path: Path) -> None:
    target = tmp_path / "long.csv"
    target.write_text('id,title,abstract\nlong1,A long one,"' + "word " * 40_000 + '"\n')
    papers, rejected = _split(target)
    assert [p.id for p in papers] == ["long1"] and not rejected
    assert len(papers[0].abstract) > 131_072
