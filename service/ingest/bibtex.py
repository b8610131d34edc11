"""Reader for BibTeX files (entries with an ``abstract`` field), parsed by bibtexparser v2.

The entry key is the paper id. Braces used for capitalisation are dropped from titles; authors
are split on ``and``; the date comes from ``year`` (and ``month`` when given). Entries without an
abstract, and blocks that do not parse, are rejected with their line number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bibtexparser.entrypoint import parse_string

from service.ingest.common import check_readable, decode_utf8, make_paper, normalise_space
from service.schemas import Paper, Rejected

MONTHS = {
    m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)
}


def _date(fields: dict[str, str]) -> str | None:
    year = fields.get("year", "").strip()[:4]
    if not year.isdigit():
        return None
    month_text = fields.get("month", "").strip().lower()[:3]
    month = MONTHS.get(month_text) or (int(month_text) if month_text.isdigit() else 1)
    return f"{year}-{min(max(month, 1), 12):02d}-01"


def read_bibtex(path: Path) -> Iterator[Paper | Rejected]:
    check_readable(path)
    library = parse_string(decode_utf8(path.read_bytes(), str(path)))
    for block in library.failed_blocks:
        yield Rejected(location=f"line {(block.start_line or 0) + 1}", reason="not valid BibTeX")
    for entry in library.entries:
        fields = {k.lower(): str(f.value) for k, f in entry.fields_dict.items()}
        where = f"line {(entry.start_line or 0) + 1} (@{entry.entry_type}{{{entry.key}}})"
        title = normalise_space(fields.get("title", "").replace("{", "").replace("}", ""))
        abstract = fields.get("abstract", "").strip()
        if not title or not abstract:
            yield Rejected(location=where, reason="missing title" if not title else "no abstract")
            continue
        keywords = fields.get("keywords", "")
        try:
            yield make_paper(
                id=entry.key,
                title=title,
                abstract=abstract,
                authors=fields.get("author", "").split(" and "),
                categories=keywords.split(","),
                date=_date(fields),
                source=path.name,
            )
        except ValueError as err:
            yield Rejected(location=where, reason=str(err))
