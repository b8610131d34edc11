from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import IngestError
from service.ingest import read_records
from service.schemas import DERIVED_TITLE_CHARS, Paper, Rejected, derive_title
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
    assert set(by_id) == {"2503.00001", "2503.00002", "2503.00003", "4983"}
    first = by_id["2503.00001"]
    assert first.categories == ["stat.ML", "cs.LG"]  # primary category first
    assert first.authors == ["A. Author", "B. Author", "C. Author"]
    assert first.date == "2025-03-04"
    assert by_id["2503.00002"].categories == ["cs.CV", "cs.AI"]
    assert by_id["2503.00002"].date == "2025-03-05"
    assert by_id["4983"].abstract  # BEIR layout: _id / text
    assert by_id["2503.00003"].title == "An abstract without a title"  # derived from it


def test_jsonl_bad_rows_are_reported_with_line_numbers() -> None:
    _, rejected = _split(FIXTURES / "papers.jsonl")
    reasons = {r.location: r.reason for r in rejected}
    assert "line 3" not in reasons  # no title: one is derived from the abstract
    assert "not a JSON object" in reasons["line 5"]
    assert "line 6" in reasons


def test_gzipped_jsonl(tmp_path: Path) -> None:
    target = tmp_path / "papers.jsonl.gz"
    target.write_bytes(gzip.compress((FIXTURES / "papers.jsonl").read_bytes()))
    papers, _ = _split(target)
    assert len(papers) == 4


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


def test_abstract_only_csv_gets_titles_from_first_sentences(tmp_path: Path) -> None:
    long_sentence = " ".join(["word"] * 60) + ". Second sentence."
    target = tmp_path / "abstracts.csv"
    target.write_text(
        "label,abstract\n"
        "a,Aspirin lowers fever in adults. We ran a trial of 300 patients.\n"
        f"b,{long_sentence}\n"
        "c,Aspirin lowers fever in adults. A different second sentence.\n"
    )
    papers, rejected = _split(target)
    assert rejected == []
    assert papers[0].title == "Aspirin lowers fever in adults"
    assert papers[1].title.endswith("…") and len(papers[1].title) <= DERIVED_TITLE_CHARS
    assert not papers[1].title[:-1].endswith(" ")
    assert papers[0].title == papers[2].title and papers[0].id != papers[2].id  # id: abstract
    assert all(p.title == derive_title(p.abstract) for p in papers)


def test_a_file_without_an_abstract_column_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "titles.csv"
    target.write_text("title\nOnly a title\n")
    with pytest.raises(IngestError, match="no abstract column"):
        _split(target)


@given(st.text(min_size=1, max_size=600).filter(str.strip))
def test_derived_titles_are_short_non_empty_prefixes(abstract: str) -> None:
    title = derive_title(abstract)
    assert 0 < len(title) <= DERIVED_TITLE_CHARS
    words = " ".join(abstract.split())
    assert words.startswith(title.removesuffix("…").rstrip(" ,;:-.")[:10])
