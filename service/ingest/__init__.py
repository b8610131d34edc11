"""Ingest: one reader per file format, each yielding :class:`Paper` or :class:`Rejected` records.

``read_records(path, fmt)`` picks the reader; ``fmt="auto"`` decides by file extension.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from service.errors import IngestError
from service.ingest.pagetext import read_papers_page
from service.ingest.tabular import read_csv, read_jsonl
from service.schemas import Paper, Rejected

Reader = Callable[[Path], Iterator[Paper | Rejected]]

READERS: dict[str, Reader] = {
    "papers-page": read_papers_page,
    "jsonl": read_jsonl,
    "csv": read_csv,
}

_BY_SUFFIX = {
    ".txt": "papers-page",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".gz": "jsonl",
    ".csv": "csv",
}

FORMATS = ("auto", *READERS)


def detect_format(path: Path) -> str:
    fmt = _BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(
            f"cannot tell the format of {path.name} from its extension; "
            f"pass --format ({', '.join(READERS)})"
        )
    return fmt


def read_records(path: Path, fmt: str = "auto") -> tuple[str, Iterator[Paper | Rejected]]:
    """Return the resolved format name and a stream of records from ``path``."""
    resolved = detect_format(path) if fmt == "auto" else fmt
    if resolved not in READERS:
        raise IngestError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return resolved, READERS[resolved](path)
