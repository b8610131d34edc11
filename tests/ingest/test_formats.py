"""arXiv OAI snapshot, BibTeX and Parquet readers, column mapping and ingest filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import IngestError
from service.ingest import IngestFilter, ingest_file, read_records
from service.ingest.tabular import ColumnMap
from service.schemas import Paper, Rejected, derive_title
from service.store import Store
from tests.helpers import FIXTURES


def _papers(path: Path, **kwargs: object) -> tuple[str, list[Paper], list[Rejected]]:
    fmt, records = read_records(path, **kwargs)  # type: ignore[arg-type]
    found = list(records)
    return (
        fmt,
        [r for r in found if isinstance(r, Paper)],
        [r for r in found if isinstance(r, Rejected)],
    )


def test_arxiv_oai_snapshot_is_detected_and_mapped() -> None:
    fmt, papers, rejected = _papers(FIXTURES / "arxiv-oai-sample.jsonl")
    assert fmt == "arxiv-oai"
    assert len(papers) == 20 and not rejected
    first = papers[0]
    assert first.id == "0704.0001"
    assert first.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert first.date == "2007-04-02"  # first version, not update_date
    assert first.authors[-1] == "C.-P. Yuan"
    assert first.categories == ["hep-ph"]
    multi = next(p for p in papers if len(p.categories) > 1)
    assert all("." in c or "-" in c for c in multi.categories)


def test_bibtex_entries_with_abstracts() -> None:
    fmt, papers, rejected = _papers(FIXTURES / "papers.bib")
    assert fmt == "bibtex"
    assert [p.id for p in papers] == ["vaswani2017attention", "ho2020denoising"]
    assert papers[0].authors == ["Vaswani, Ashish", "Shazeer, Noam", "Parmar, Niki"]
    assert papers[0].date == "2017-12-01"
    assert papers[1].title == "Denoising Diffusion Probabilistic Models"  # braces dropped
    assert len(rejected) == 1 and rejected[0].reason == "no abstract"


def test_parquet_with_column_mapping() -> None:
    path = FIXTURES / "papers-renamed.parquet"
    _, unmapped, _ = _papers(path)  # no title column known: titles come from the abstracts
    assert all(p.title == derive_title(p.abstract) for p in unmapped)
    columns = ColumnMap(id="paper_id", title="name")
    fmt, papers, _ = _papers(path, columns=columns)
    assert fmt == "parquet"
    assert [p.id for p in papers] == ["pq0", "pq1", "pq2"]
    assert papers[1].categories == ["cs.CV", "cs.AI"]  # 'terms' found by its common name
    assert papers[0].date == "2024-05-01" and papers[2].date is None


def test_mapped_column_missing_is_a_clear_error() -> None:
    with pytest.raises(IngestError, match="no column 'heading'"):
        list(read_records(FIXTURES / "papers.csv", columns=ColumnMap(title="heading"))[1])


def test_column_options_only_for_tabular_formats() -> None:
    with pytest.raises(IngestError, match="column options"):
        read_records(FIXTURES / "papers.bib", columns=ColumnMap(title="x"))


def test_filters_category_dates_and_limit(tmp_path: Path) -> None:
    with Store(tmp_path / "p.sqlite") as store:
        by_category = ingest_file(
            store,
            FIXTURES / "arxiv-oai-sample.jsonl",
            progress=False,
            keep=IngestFilter(categories=("hep-ph",)),
        )
        assert by_category.new > 0 and by_category.filtered > 0
        assert by_category.new + by_category.filtered == 20
        assert all("hep-ph" in p.categories for p, _ in store.papers())
    with Store(tmp_path / "q.sqlite") as store:
        dated = ingest_file(
            store,
            FIXTURES / "arxiv-oai-sample.jsonl",
            progress=False,
            keep=IngestFilter(since="2007-04-02", until="2007-04-02", limit=2),
        )
        assert dated.new == 2
        assert {p.date for p, _ in store.papers()} == {"2007-04-02"}
