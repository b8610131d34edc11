"""Ingest: one reader per file format, each yielding :class:`Paper` or :class:`Rejected` records.

``read_records(path, fmt)`` picks the reader; ``fmt="auto"`` decides by file extension.
Formats: papers-page text, arXiv OAI snapshot, JSON Lines, CSV, Parquet, BibTeX.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from service.errors import IngestError
from service.ingest.arxiv_oai import looks_like_oai, read_arxiv_oai
from service.ingest.bibtex import read_bibtex
from service.ingest.common import check_readable
from service.ingest.pagetext import read_papers_page
from service.ingest.tabular import (
    NO_MAP,
    ColumnMap,
    open_binary,
    read_csv,
    read_jsonl,
    read_parquet,
)
from service.schemas import IngestReport, Paper, Rejected
from service.store import Store

Reader = Callable[[Path, ColumnMap], Iterator[Paper | Rejected]]

READERS: dict[str, Reader] = {
    "papers-page": lambda path, _: read_papers_page(path),
    "arxiv-oai": lambda path, _: read_arxiv_oai(path),
    "jsonl": read_jsonl,
    "csv": read_csv,
    "parquet": read_parquet,
    "bibtex": lambda path, _: read_bibtex(path),
}
MAPPABLE = ("jsonl", "csv", "parquet")
BUNDLED_CORPUS = Path(__file__).parents[1] / "data" / "trending-papers.jsonl"
"""The default corpus (115 trending ML papers): an empty store is filled with it on build."""

_BY_SUFFIX = {
    ".txt": "papers-page",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".gz": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".bib": "bibtex",
}

FORMATS = ("auto", *READERS)


@dataclass(frozen=True)
class IngestFilter:
    """Which valid papers of a file to keep: categories (exact or prefix like ``cs``), an ISO
    date range (papers without a date fail a date filter), and at most ``limit`` papers."""

    categories: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    limit: int | None = None

    def keeps(self, paper: Paper) -> bool:
        if self.categories and not any(
            c == wanted or c.startswith(f"{wanted}.")
            for c in paper.categories
            for wanted in self.categories
        ):
            return False
        if self.since and not (paper.date and paper.date >= self.since):
            return False
        return not (self.until and not (paper.date and paper.date <= self.until))


NO_FILTER = IngestFilter()


def apply_filter(
    records: Iterator[Paper | Rejected], keep: IngestFilter, report: IngestReport
) -> Iterator[Paper | Rejected]:
    """Pass rejected records through, count filtered papers, stop after ``limit`` papers."""
    kept = 0
    for record in records:
        if isinstance(record, Paper):
            if not keep.keeps(record):
                report.filtered += 1
                continue
            if keep.limit is not None and kept >= keep.limit:
                return
            kept += 1
        yield record


def detect_format(path: Path) -> str:
    fmt = _BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(
            f"cannot tell the format of {path.name} from its extension; "
            f"pass --format ({', '.join(READERS)})"
        )
    return fmt


def _first_record_is_oai(path: Path) -> bool:
    check_readable(path)
    with open_binary(path) as handle:
        first = handle.readline()
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and looks_like_oai(record)


def read_records(
    path: Path, fmt: str = "auto", columns: ColumnMap = NO_MAP
) -> tuple[str, Iterator[Paper | Rejected]]:
    """Return the resolved format name and a stream of records from ``path``.

    JSON Lines holding arXiv OAI snapshot records are read as ``arxiv-oai`` automatically.
    """
    resolved = detect_format(path) if fmt == "auto" else fmt
    if fmt == "auto" and resolved == "jsonl" and columns == NO_MAP and _first_record_is_oai(path):
        resolved = "arxiv-oai"
    if resolved not in READERS:
        raise IngestError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if columns != NO_MAP and resolved not in MAPPABLE:
        raise IngestError(f"column options apply to {', '.join(MAPPABLE)} files, not {resolved}")
    return resolved, READERS[resolved](path, columns)


def ingest_file(
    store: Store,
    path: Path,
    fmt: str = "auto",
    progress: bool = True,
    columns: ColumnMap = NO_MAP,
    keep: IngestFilter = NO_FILTER,
) -> IngestReport:
    """Read one file into the store (one transaction); the report says what changed."""
    from tqdm import tqdm

    resolved, records = read_records(path, fmt, columns)
    report = IngestReport(file=str(path), format=resolved)
    shown = tqdm(records, desc=f"ingest {path.name}", unit="rec", disable=not progress)
    store.ingest(apply_filter(iter(shown), keep, report), report)
    return report
