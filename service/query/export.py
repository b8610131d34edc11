"""Papers out of paperscope: a table of papers with their topics and map positions (CSV,
Parquet, JSON lines; as BERTopic's ``get_document_info``) and BibTeX for any list of papers
(search hits, a collection, its feed, a topic's members) for Zotero or JabRef.

Everything is produced in chunks (:func:`stream`), so the API streams even the whole corpus.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from bibtexparser.entrypoint import write_string
from bibtexparser.library import Library
from bibtexparser.model import Entry, Field

from service.errors import InvalidInput
from service.query import collections
from service.query.engine import Engine
from service.query.view import BuildView
from service.sanitize import clean_text, latest_date, month_index
from service.schemas import MAX_K, NO_FILTER, Paper, PaperFilter
from service.search.fusion import DEFAULT_FUSION, FusionParams, Mode

Format = Literal["csv", "parquet", "jsonl", "bibtex"]
FORMATS: tuple[Format, ...] = ("csv", "parquet", "jsonl", "bibtex")
MEDIA_TYPES: dict[Format, str] = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
    "bibtex": "application/x-bibtex; charset=utf-8",
}
COLUMNS = ("id", "title", "date", "categories", "topic_id", "topic_name", "outlier", "x", "y")
CHUNK = 1000
"""Rows rendered per piece of the stream."""
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("title", pa.string()),
        ("date", pa.string()),
        ("categories", pa.list_(pa.string())),
        ("topic_id", pa.int32()),
        ("topic_name", pa.string()),
        ("outlier", pa.bool_()),
        ("x", pa.float32()),
        ("y", pa.float32()),
    ]
)


def parse_format(text: str) -> Format:
    for known in FORMATS:
        if text == known:
            return known
    raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, got {text!r}")


def format_of(path: Path) -> Format:
    """The format an output file's suffix names (.csv, .parquet, .jsonl, .bib)."""
    suffix = path.suffix.lower().lstrip(".")
    return parse_format({"bib": "bibtex", "json": "jsonl"}.get(suffix, suffix))


def visible_rows(view: BuildView) -> list[int]:
    """Every served row: the build's, then live additions, without hidden ones."""
    return view.visible(list(range(view.size + len(view.live.papers))))


def records(view: BuildView, rows: Sequence[int]) -> Iterator[dict[str, Any]]:
    """One table row per paper: id, title, date, categories, topic id and name, outlier, x, y
    (from what the view holds in memory: no database read)."""
    live = view.live
    for row in rows:
        if row < view.size:
            paper_id, title = view.ids[row], view.titles[row]
            day, categories = view.dates[row], view.categories[row]
            x, y = view.coords[row]
        else:
            paper = live.papers[row - view.size]
            paper_id, title, day, categories = paper.id, paper.title, paper.date, paper.categories
            x, y = live.coords[row - view.size]
        topic = view.topic_of(row)
        yield {
            "id": paper_id,
            "title": title,
            "date": day,
            "categories": list(categories),
            "topic_id": topic,
            "topic_name": view.topic_label(topic),
            "outlier": view.outlier_of(row),
            "x": round(float(x), 5),
            "y": round(float(y), 5),
        }


def stream(engine: Engine, rows: Sequence[int], fmt: Format) -> Iterator[bytes]:
    """The papers at ``rows`` of the engine's build in ``fmt``, piece by piece."""
    view = engine.view
    if fmt == "bibtex":
        for start in range(0, len(rows), CHUNK):
            chunk = list(rows[start : start + CHUNK])
            papers = view.papers_at(chunk)
            yield bibtex([papers[r] for r in chunk]).encode()
        return
    if fmt == "parquet":
        yield _parquet(view, rows)
        return
    for start in range(0, len(rows), CHUNK):
        table = list(records(view, rows[start : start + CHUNK]))
        if fmt == "jsonl":
            yield "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in table).encode()
            continue
        yield csv_text(table, header=start == 0).encode()
    if not rows and fmt == "csv":
        yield csv_text([], header=True).encode()


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP "CSV injection")."""


def csv_text(table: Sequence[dict[str, Any]], header: bool) -> str:
    """Rows of :func:`records` as CSV (RFC 4180: CRLF line ends, so a cell holding a lone CR is
    quoted too; categories ``;``-separated), every cell through :func:`csv_cell`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    if header:
        writer.writeheader()
    writer.writerows(
        {k: csv_cell(v) for k, v in {**r, "categories": ";".join(r["categories"])}.items()}
        for r in table
    )
    return out.getvalue()


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet opens as text: one starting with ``=``, ``+``, ``-``, ``@``, tab
    or carriage return gets a leading ``'`` (the OWASP rule). Numbers (negative coordinates,
    topic -1) are not text and stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _parquet(view: BuildView, rows: Sequence[int]) -> bytes:
    """A Parquet file written in row groups of :data:`CHUNK` (a file's footer comes last, so
    it is sent whole)."""
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, SCHEMA) as writer:
        for start in range(0, max(len(rows), 1), CHUNK):
            chunk = list(records(view, rows[start : start + CHUNK]))
            writer.write_table(pa.Table.from_pylist(chunk, schema=SCHEMA))
    return buffer.getvalue()


def write(engine: Engine, path: Path) -> int:
    """Every served paper into ``path`` (format from its suffix); returns how many. Written
    beside it and renamed into place: a full disk leaves no half-written file."""
    fmt = format_of(path)
    rows = visible_rows(engine.view)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as out:
            for piece in stream(engine, rows, fmt):
                out.write(piece)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return len(rows)


_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_:./+-]")
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()


def _braces(text: str) -> str:
    """A value safe inside BibTeX braces: unbalanced braces would end the field early, and a
    final backslash would escape the closing one; control characters and NUL are dropped.
    LaTeX commands (``It\\^o``) are kept."""
    safe = clean_text(text).replace("{", "(").replace("}", ")")
    return safe + " " if safe.endswith("\\") else safe


def bibtex(papers: Sequence[Paper]) -> str:
    """BibTeX entries (``@misc``, key = the paper id made key-safe) with title, authors, year,
    month, abstract and categories as keywords."""
    library = Library()
    used: set[str] = set()
    latest = latest_date()
    for paper in papers:
        key = _KEY_UNSAFE.sub("_", paper.id) or "paper"
        while key in used:
            key += "_"
        used.add(key)
        fields = [Field("title", _braces(paper.title))]
        if paper.authors:
            fields.append(Field("author", _braces(" and ".join(paper.authors))))
        if (month := month_index(paper.date, latest)) is not None:
            fields.append(Field("year", str(month // 12)))
            fields.append(Field("month", _MONTHS[month % 12]))
        fields.append(Field("abstract", _braces(paper.abstract)))
        if paper.categories:
            fields.append(Field("keywords", _braces(", ".join(paper.categories))))
        fields.append(Field("note", "paperscope id: " + _braces(paper.id)))
        library.add(Entry("misc", key, fields))
    return str(write_string(library)) if papers else ""


def select(
    engine: Engine,
    db_path: Path,
    filters: PaperFilter = NO_FILTER,
    *,
    q: str | None = None,
    k: int = MAX_K,
    mode: Mode = "hybrid",
    fusion: FusionParams = DEFAULT_FUSION,
    topic: int | None = None,
    collection: str | None = None,
    feed: bool = False,
) -> list[int]:
    """Rows of the list to export: search hits for ``q`` (``k`` of them), a topic's members, a
    collection's positive papers (or, with ``feed``, its feed of ``k`` papers since
    ``filters.since``), else every served paper. Several lists given: the papers in all of them,
    in the first one's order. ``filters`` narrows the result."""
    view = engine.view
    lists: list[list[int]] = []
    if q is not None:
        lists.append([view.row_of(h.id) for h in engine.search(q, k, mode, fusion, filters)])
    if topic is not None:
        lists.append(view.members(view.topic(topic)))
    if collection is not None and feed:
        result = collections.feed(db_path, engine, collection, filters.since, k)
        lists.append([view.row_of(r.id) for r in result.results])
    elif collection is not None:
        saved = collections.get(db_path, engine, collection)
        lists.append([view.row_of(i) for i in saved.positive if i not in saved.missing])
    if not lists:
        lists.append(visible_rows(view))
    rows = lists[0]
    for other in lists[1:]:
        keep_rows = set(other)
        rows = [r for r in rows if r in keep_rows]
    if collection is not None and feed:  # the feed's "since" counts papers added since, too
        filters = filters.model_copy(update={"since": None})
    allowed = view.allowed(filters)
    if allowed is None:
        return rows
    keep = set(allowed.tolist())
    return [r for r in rows if r in keep]
