"""Reader for the arXiv OAI metadata snapshot (``arxiv-metadata-oai-snapshot.json``).

One JSON object a line, 2.7M lines in the real file: streamed line by line, never loaded whole.
Maps id, title, abstract, authors (LaTeX accents kept as given), categories (the snapshot lists the
primary first) and the date of the first version (``versions[0].created``), falling back to
``update_date``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.errors import IngestError
from service.ingest.common import check_readable, decode_utf8, make_paper, split_names
from service.ingest.tabular import numbered_lines, open_binary
from service.sanitize import parse_date
from service.schemas import Paper, Rejected

SIGNATURE = frozenset({"id", "title", "abstract", "versions", "update_date"})
"""Keys that mark a JSON object as an OAI snapshot record."""


def looks_like_oai(record: dict[str, Any]) -> bool:
    return record.keys() >= SIGNATURE


def _first_version_date(record: dict[str, Any]) -> str | None:
    """The first version's date, else ``update_date``; ValueError when the one used is bad."""
    versions = record.get("versions") or []
    if versions and isinstance(versions[0], dict) and versions[0].get("created"):
        try:
            return parse_date(str(versions[0]["created"]))
        except ValueError:
            pass
    return parse_date(record.get("update_date"))


def oai_to_paper(record: dict[str, Any], source: str) -> Paper:
    if not record.get("id"):
        raise ValueError("missing id")
    return make_paper(
        id=str(record["id"]),
        title=str(record.get("title") or ""),
        abstract=str(record.get("abstract") or ""),
        authors=split_names(record.get("authors")),
        categories=str(record.get("categories") or "").split(),
        date=_first_version_date(record),
        source=source,
    )


def read_arxiv_oai(path: Path) -> Iterator[Paper | Rejected]:
    check_readable(path)
    with open_binary(path) as handle:
        for number, raw in numbered_lines(handle, path):
            if not raw.strip():
                continue
            where = f"line {number}"
            try:
                record = json.loads(decode_utf8(raw, where))
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                yield oai_to_paper(record, path.name)
            except (ValueError, TypeError, IngestError) as err:
                yield Rejected(location=where, reason=str(err))
