"""Helpers every reader shares: stable ids, file checks, field normalisation, and
:func:`make_paper`, the one way a record becomes a stored paper (text cleaned, date checked)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from pydantic import ValidationError

from service.errors import IngestError
from service.sanitize import clean_text, parse_date
from service.schemas import Paper

_WORD = re.compile(r"[a-z0-9]+")
_SPACE = re.compile(r"\s+")


def normalise_space(text: str) -> str:
    """Collapse runs of whitespace (line-wrapped abstracts) into single spaces."""
    return _SPACE.sub(" ", text).strip()


def stable_id(title: str) -> str:
    """An id derived from the title alone, identical across runs and machines.

    A readable slug of the first words plus 8 hex digits of a hash of the normalised title, so
    ``paperscope similar <id>`` stays typeable and re-ingesting a page upserts, not duplicates.
    """
    normal = normalise_space(unicodedata.normalize("NFKC", title)).casefold()
    digest = hashlib.sha1(normal.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
    slug = "-".join(_WORD.findall(normal)[:6])
    return f"{slug}-{digest}" if slug else f"paper-{digest}"


def check_readable(path: Path) -> None:
    """Fail with a clear message for a missing, unreadable or empty file."""
    if not path.exists():
        raise IngestError(f"file not found: {path}")
    if not path.is_file():
        raise IngestError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise IngestError(f"file is empty: {path}")


def decode_utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise IngestError(f"{where} is not UTF-8 text (byte {err.start}: {err.reason})") from None


def split_names(value: object) -> list[str]:
    """Authors or categories given as a list, or as one string separated by commas/and/spaces."""
    if value is None:
        return []
    if isinstance(value, list):
        return [normalise_space(str(v)) for v in value if str(v).strip()]
    text = normalise_space(str(value))
    if not text:
        return []
    if "," in text or " and " in text:
        parts = re.split(r",\s*|\s+and\s+", text)
        return [p.strip() for p in parts if p.strip()]
    return [text]


def make_paper(
    *,
    id: str,
    title: str,
    abstract: str,
    source: str,
    authors: list[str] | None = None,
    categories: list[str] | None = None,
    date: object = None,
) -> Paper:
    """A record as every reader stores it: text cleaned (:func:`~service.sanitize.clean_text`:
    NFC, no control characters), id, title, authors and categories on one line, the date in its
    stored form (:func:`~service.sanitize.parse_date`). ValueError with a readable reason for a
    record that cannot be a paper (a bad date, a field left empty once cleaned)."""
    title = normalise_space(clean_text(title))
    abstract = clean_text(abstract).strip()
    paper_id = normalise_space(clean_text(id))
    for name, value in (("id", paper_id), ("title", title), ("abstract", abstract)):
        if not value:
            raise ValueError(f"missing {name}")
    try:
        return Paper(
            id=paper_id,
            title=title,
            abstract=abstract,
            authors=_names(authors),
            categories=_names(categories),
            date=parse_date(date),
            source=source,
        )
    except ValidationError as err:
        raise ValueError("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in err.errors())) from None


def _names(values: list[str] | None) -> list[str]:
    cleaned = (normalise_space(clean_text(v)) for v in values or [])
    return [v for v in cleaned if v]
