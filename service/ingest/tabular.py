"""Readers for JSON Lines (optionally gzipped), CSV and Parquet files of papers.

Columns are found by common names (``id``/``_id``, ``title``, ``abstract``/``summary``/``text``,
``authors``, ``categories``/``terms``, a date column), so arXiv dumps, BEIR corpora and hand-made
files ingest without a mapping; a :class:`ColumnMap` (``--title-col`` etc.) names them otherwise.
A bad row is rejected with its line number and reason; it never aborts the good rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from service.errors import IngestError
from service.ingest.common import (
    check_readable,
    decode_utf8,
    make_paper,
    normalise_space,
    split_names,
    stable_id,
)
from service.sanitize import clean_text
from service.schemas import Paper, Rejected, derive_title

ID_KEYS = ("id", "_id", "paper_id", "arxiv_id", "doc_id")
log = logging.getLogger(__name__)
TITLE_KEYS = ("title",)
ABSTRACT_KEYS = ("abstract", "summary", "text")
AUTHOR_KEYS = ("authors", "author")
CATEGORY_KEYS = ("categories", "terms", "category")
DATE_KEYS = ("date", "published", "listing_date", "update_date", "year")


@dataclass(frozen=True)
class ColumnMap:
    """Explicit column names; ``None`` means: find the column by its common names."""

    id: str | None = None
    title: str | None = None
    abstract: str | None = None
    authors: str | None = None
    categories: str | None = None
    date: str | None = None

    def keys(self, field: str, defaults: tuple[str, ...]) -> tuple[str, ...]:
        chosen = getattr(self, field)
        return (chosen,) if chosen else defaults

    def check(self, available: Iterable[str], where: str) -> None:
        """Fail before reading rows when a named column is not in the file."""
        names = set(available)
        for field in ("id", "title", "abstract", "authors", "categories", "date"):
            chosen = getattr(self, field)
            if chosen and chosen not in names:
                raise IngestError(f"{where}: no column {chosen!r} (columns: {sorted(names)})")


NO_MAP = ColumnMap()


def _first(record: Mapping[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        value = record.get(key)
        if value not in (None, ""):
            return value
    return None


def record_to_paper(
    record: Mapping[str, object], source: str, columns: ColumnMap = NO_MAP
) -> Paper:
    """Map a flat record onto a :class:`Paper`; raises ValueError with a readable reason."""
    title = normalise_space(
        clean_text(str(_first(record, columns.keys("title", TITLE_KEYS)) or ""))
    )
    abstract = clean_text(str(_first(record, columns.keys("abstract", ABSTRACT_KEYS)) or ""))
    if not abstract.strip():
        raise ValueError("missing abstract")
    derived = not title
    if derived:  # an abstract-only record: its first sentence is the display title
        title = derive_title(abstract)
    raw_id = _first(record, columns.keys("id", ID_KEYS))
    paper_id = (
        normalise_space(str(raw_id))
        if raw_id is not None
        else stable_id(abstract if derived else title)
    )
    categories = _first(record, columns.keys("categories", CATEGORY_KEYS))
    if isinstance(categories, str):
        categories = categories.split()
    primary = record.get("primary_category")
    category_list = split_names(categories)
    if isinstance(primary, str) and primary in category_list:
        category_list.remove(primary)
        category_list.insert(0, primary)
    return make_paper(
        id=paper_id,
        title=title,
        abstract=abstract,
        authors=split_names(_first(record, columns.keys("authors", AUTHOR_KEYS))),
        categories=category_list,
        date=_first(record, columns.keys("date", DATE_KEYS)),
        source=source,
    )


def open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def numbered_lines(handle: IO[bytes], path: Path) -> Iterator[tuple[int, bytes]]:
    """Lines with their numbers; a truncated or corrupt compressed file is a clear error."""
    number = 0
    try:
        for number, raw in enumerate(handle, 1):
            yield number, raw
    except (EOFError, OSError, zlib.error) as err:
        raise IngestError(f"{path} is truncated or corrupt after line {number}: {err}") from None


def read_jsonl(path: Path, columns: ColumnMap = NO_MAP) -> Iterator[Paper | Rejected]:
    """Stream a JSON Lines file; never loads the whole file."""
    check_readable(path)
    with open_binary(path) as handle:
        for number, raw in numbered_lines(handle, path):
            where = f"line {number}"
            if not raw.strip():
                continue
            try:
                record = json.loads(decode_utf8(raw, where))
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                yield record_to_paper(record, path.name, columns)
            except (ValueError, TypeError, IngestError) as err:
                yield Rejected(location=where, reason=str(err))


def _check_header(names: list[str], columns: ColumnMap, where: str) -> None:
    """Named columns must exist; an abstract column is needed (a title column is not: titles
    are then derived from the abstracts)."""
    columns.check(names, where)
    if not set(names) & set(columns.keys("abstract", ABSTRACT_KEYS)):
        raise IngestError(f"{where}: no abstract column among {names}; name it with --abstract-col")


def read_csv(path: Path, columns: ColumnMap = NO_MAP) -> Iterator[Paper | Rejected]:
    check_readable(path)
    text = decode_utf8(path.read_bytes(), str(path))
    csv.field_size_limit(1 << 24)  # abstracts can exceed the 128 KiB default
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [f.strip() for f in reader.fieldnames or []]
    except csv.Error as err:
        raise IngestError(f"{path}: not a CSV file with a header ({err})") from None
    _check_header(header, columns, str(path))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield Rejected(location=f"line {reader.line_num}", reason=f"bad CSV: {err}")
            continue
        try:
            record = {k.strip(): v for k, v in row.items() if k}
            yield record_to_paper(record, path.name, columns)
        except ValueError as err:
            yield Rejected(location=f"line {reader.line_num}", reason=str(err))


def read_parquet(path: Path, columns: ColumnMap = NO_MAP) -> Iterator[Paper | Rejected]:
    """Stream a Parquet file in record batches (never the whole table in memory)."""
    import pyarrow.parquet as pq

    check_readable(path)
    try:
        table = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise IngestError(f"{path} is not a readable Parquet file: {err}") from None
    _check_header(list(table.schema_arrow.names), columns, str(path))
    number = 0
    for batch in table.iter_batches(batch_size=2048):
        for record in batch.to_pylist():
            number += 1
            try:
                yield record_to_paper(record, path.name, columns)
            except ValueError as err:
                yield Rejected(location=f"row {number}", reason=str(err))
