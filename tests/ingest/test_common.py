"""make_paper: every reader stores text cleaned and dates checked, and rejects a record with a bad
date by its line (the rest of the file is still read)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.ingest import ingest_file, read_records
from service.ingest.common import make_paper
from service.schemas import Paper, Rejected
from service.store import Store

ABSTRACT = "We study \x00hostile\x01 text in abstracts.\r\nIt has a second line and\ttabs."
CLEAN_ABSTRACT = "We study hostile text in abstracts.\nIt has a second line and\ttabs."


def _split(path: Path) -> tuple[list[Paper], list[Rejected]]:
    records = list(read_records(path)[1])
    return (
        [r for r in records if isinstance(r, Paper)],
        [r for r in records if isinstance(r, Rejected)],
    )


def test_make_paper_cleans_every_field_and_stores_one_date_form() -> None:
    paper = make_paper(
        id=" a\x07b ",
        title="=cmd\x00 \u202eevil\u202c\n <script>",
        abstract=ABSTRACT,
        authors=["A.\x1b Author", "\x01"],
        categories=["cs.\x00LG", ""],
        date="2024-06",
        source="x",
    )
    assert paper.id == "ab"
    assert paper.title == "=cmd \u202eevil\u202c <script>"  # kept: outputs neutralise it
    assert paper.abstract == CLEAN_ABSTRACT
    assert paper.authors == ["A. Author"]
    assert paper.categories == ["cs.LG"]
    assert paper.date == "2024-06-01"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"date": "31/12/2025"}, "date '31/12/2025' is not a date"),
        ({"date": "2025-13-45"}, "not a real calendar date"),
        ({"date": "9999-12-31"}, "outside"),
        ({"title": "\x00\x01"}, "missing title"),
        ({"abstract": "\x00 \x02"}, "missing abstract"),
        ({"id": "\x00"}, "missing id"),
        ({"id": "x" * 201}, "id: String should have at most 200 characters"),
    ],
)
def test_make_paper_refuses_with_a_reason(fields: dict[str, str], reason: str) -> None:
    record: dict[str, object] = {"id": "p1", "title": "T", "abstract": "A", **fields}
    with pytest.raises(ValueError, match=reason):
        make_paper(source="x", **record)  # type: ignore[arg-type]


ROWS = [
    {"id": "good", "title": "Fine\x01 title", "abstract": ABSTRACT, "date": "2024"},
    {"id": "bad-day", "title": "Bad day", "abstract": "Some abstract.", "date": "0000-00-00"},
    {"id": "slashed", "title": "Slashed", "abstract": "Some abstract.", "date": "31/12/2025"},
    {"id": "iso", "title": "ISO", "abstract": "Some abstract.", "date": "2024-06-15T23:00-05:00"},
]


def _check(papers: list[Paper], rejected: list[Rejected], lines: tuple[str, str]) -> None:
    by_id = {p.id: p for p in papers}
    assert set(by_id) == {"good", "iso"}
    assert by_id["good"].title == "Fine title"
    assert by_id["good"].abstract == CLEAN_ABSTRACT
    assert by_id["good"].date == "2024-01-01"
    assert by_id["iso"].date == "2024-06-15"
    reasons = {r.location: r.reason for r in rejected}
    assert "not a real calendar date" in reasons[lines[0]]
    assert "'31/12/2025' is not a date" in reasons[lines[1]]


def test_jsonl_bad_dates_rejected_by_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    _check(*_split(path), ("line 2", "line 3"))


def test_csv_bad_dates_rejected_by_line(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    lines = ["id,title,abstract,date"]
    lines += [f'{r["id"]},{r["title"]},"{r["abstract"]}",{r["date"]}' for r in ROWS]
    path.write_text("\n".join(lines) + "\n", newline="")
    papers, rejected = _split(path)
    by_id = {p.id: p for p in papers}
    assert set(by_id) == {"good", "iso"}
    assert by_id["good"].abstract == CLEAN_ABSTRACT  # \r\n inside the quoted cell too
    assert {r.location for r in rejected} == {"line 4", "line 5"}  # the abstract spans 2 lines


def test_parquet_dates_of_any_type(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    _check(*_split(path), ("row 2", "row 3"))


def test_arxiv_oai_dates(tmp_path: Path) -> None:
    base = {"title": "T", "abstract": "A.", "authors": "X", "categories": "cs.LG"}
    first = [{"created": "Mon, 2 Apr 2007 19:18:42 GMT"}]
    records = [
        {"id": "1", **base, "versions": first, "update_date": "2009-01-01"},
        {"id": "2", **base, "versions": [{"created": "garbage"}], "update_date": "2008-11-13"},
        {"id": "3", **base, "versions": [], "update_date": "2008-13-13"},
    ]
    path = tmp_path / "oai.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    papers, rejected = _split(path)
    assert [(p.id, p.date) for p in papers] == [("1", "2007-04-02"), ("2", "2008-11-13")]
    assert rejected[0].location == "line 3" and "not a real calendar date" in rejected[0].reason


def test_bibtex_year_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "p.bib"
    path.write_text(
        "@misc{ok, title={Fine}, abstract={An abstract.}, year={2019}, month=mar}\n"
        "@misc{far, title={Far}, abstract={An abstract.}, year={9999}}\n"
    )
    papers, rejected = _split(path)
    assert [(p.id, p.date) for p in papers] == [("ok", "2019-03-01")]
    assert "outside" in rejected[0].reason and "far" in rejected[0].location


def test_papers_page_text_is_cleaned() -> None:
    from service.ingest.pagetext import parse_papers_page

    abstract = " ".join(["word"] * 40) + "\x00\x85"
    (paper,) = list(parse_papers_page(f"A ti\x01tle\n\n{abstract}\n"))
    assert isinstance(paper, Paper)
    assert paper.title == "A title" and paper.abstract == " ".join(["word"] * 40)


def test_the_ingest_report_lists_bad_dates_and_stores_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    with Store(tmp_path / "papers.sqlite") as store:
        report = ingest_file(store, path, progress=False)
        stored = {p.id: p.date for p, _ in store.papers()}
    assert (report.new, len(report.rejected)) == (2, 2)
    assert stored == {"good": "2024-01-01", "iso": "2024-06-15"}
