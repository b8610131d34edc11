"""Reader for the "papers page" text format: text copied from a trending-papers web page.

After a short page header, a title line and an abstract paragraph alternate, separated by blank
lines. Header lines (site name, buttons, a date) are recognised because they are not followed by an
abstract. Papers get ids derived from their titles (:func:`stable_id`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from service.ingest.common import (
    check_readable,
    decode_utf8,
    make_paper,
    normalise_space,
    stable_id,
)
from service.schemas import Paper, Rejected

MIN_ABSTRACT_WORDS = 30
MAX_TITLE_WORDS = 40


def _is_abstract(line: str) -> bool:
    return len(line.split()) >= MIN_ABSTRACT_WORDS


def _is_title(line: str) -> bool:
    return 0 < len(line.split()) <= MAX_TITLE_WORDS


def parse_papers_page(text: str, source: str = "") -> Iterator[Paper | Rejected]:
    """One :class:`Paper` per title/abstract pair; stray lines after the header are rejected."""
    lines = [(number, normalise_space(raw)) for number, raw in enumerate(text.splitlines(), 1)]
    lines = [(number, line) for number, line in lines if line]
    seen_pair = False
    i = 0
    while i < len(lines):
        number, line = lines[i]
        following = lines[i + 1][1] if i + 1 < len(lines) else ""
        if _is_title(line) and _is_abstract(following):
            seen_pair = True
            try:
                yield make_paper(id=stable_id(line), title=line, abstract=following, source=source)
            except ValueError as err:
                yield Rejected(location=f"line {number}", reason=str(err))
            i += 2
            continue
        if seen_pair:
            kind = "abstract without a title" if _is_abstract(line) else "title without an abstract"
            yield Rejected(location=f"line {number}", reason=f"{kind}: {line[:80]!r}")
        i += 1


def read_papers_page(path: Path) -> Iterator[Paper | Rejected]:
    check_readable(path)
    text = decode_utf8(path.read_bytes(), str(path))
    yield from parse_papers_page(text, source=path.name)
