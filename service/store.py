"""The papers database (SQLite): the only module that touches it.

Papers are upserted by id inside one transaction per file, so a crash mid-ingest (or a full
disk) leaves the database as it was before the file. SQLite's own errors leave this module as
:class:`DatabaseDamaged` (a malformed file) or :class:`StorageError` (a full disk, a read-only
folder), never as a bare ``sqlite3`` exception. Embeddings are cached by (model, content
hash): an unchanged paper is never embedded twice, whichever build asks.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Concatenate, NamedTuple, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from service.errors import DatabaseDamaged, InvalidInput, PaperscopeError, storage_error
from service.files import fsync
from service.schemas import Collection, CollectionIn, IngestReport, Paper, Rejected

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS papers (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    abstract     TEXT NOT NULL,
    authors      TEXT NOT NULL,   -- JSON list
    categories   TEXT NOT NULL,   -- JSON list, primary first
    date         TEXT,
    source       TEXT NOT NULL,
    content_hash TEXT NOT NULL    -- sha256 of what is embedded (title + abstract)
);
CREATE TABLE IF NOT EXISTS embeddings (
    model        TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    vector       BLOB NOT NULL,   -- float32, L2-normalised
    PRIMARY KEY (model, content_hash)
);
CREATE TABLE IF NOT EXISTS live_papers (   -- papers added to a served build (service.query.live)
    id           TEXT PRIMARY KEY REFERENCES papers(id) ON DELETE CASCADE,
    build_id     TEXT NOT NULL,   -- the build they were placed against
    topic        INTEGER NOT NULL,
    x            REAL NOT NULL,
    y            REAL NOT NULL,
    vector       BLOB NOT NULL,   -- float32, as embedded
    added_at     TEXT NOT NULL
);
-- Bumped by every change a running server must mirror (a deletion, a live addition), so the
-- other server processes notice it with one cheap read (service.query.serving.BuildWatcher).
CREATE TABLE IF NOT EXISTS serving_version (
    one          INTEGER PRIMARY KEY CHECK (one = 1),
    version      INTEGER NOT NULL
);
INSERT OR IGNORE INTO serving_version VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS bump_on_delete AFTER DELETE ON papers
    BEGIN UPDATE serving_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS bump_on_live AFTER INSERT ON live_papers
    BEGIN UPDATE serving_version SET version = version + 1; END;
-- Sub-topics a topic was split into on request (service.query.subtopics), keyed by the papers
-- they hold: they apply to whichever topic of a later build holds most of the same papers.
CREATE TABLE IF NOT EXISTS topic_splits (
    id           INTEGER PRIMARY KEY,
    topic        INTEGER NOT NULL,   -- the topic's id when it was split
    build_id     TEXT NOT NULL,      -- the build it was split in
    created_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subtopics (
    split        INTEGER NOT NULL REFERENCES topic_splits(id) ON DELETE CASCADE,
    id           INTEGER NOT NULL,   -- the sub-topic's id within its split, largest first
    name         TEXT NOT NULL,
    keywords     TEXT NOT NULL,      -- JSON list
    PRIMARY KEY (split, id)
);
CREATE TABLE IF NOT EXISTS subtopic_papers (
    split        INTEGER NOT NULL REFERENCES topic_splits(id) ON DELETE CASCADE,
    paper_id     TEXT NOT NULL,      -- no foreign key: a deleted paper just drops out
    subtopic     INTEGER NOT NULL,
    PRIMARY KEY (split, paper_id)
);
-- Saved collections (service.query.collections): paper ids, no foreign keys, so a collection
-- outlives the deletion of its papers, every rebuild and every restart.
CREATE TABLE IF NOT EXISTS collections (
    name         TEXT PRIMARY KEY,
    positive     TEXT NOT NULL,   -- JSON list of paper ids
    negative     TEXT NOT NULL,   -- JSON list of paper ids
    seen         TEXT NOT NULL,   -- JSON list of paper ids
    note         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
-- Where each OAI-PMH harvest (service.ingest.oai_sync) resumes: one row per endpoint and set.
CREATE TABLE IF NOT EXISTS sync_state (
    endpoint     TEXT NOT NULL,
    set_spec     TEXT NOT NULL,   -- '' = the whole repository
    resume_from  TEXT NOT NULL,   -- YYYY-MM-DD: the next harvest's "from" (the server's date)
    synced_at    TEXT NOT NULL,   -- when the last harvest completed (UTC, ISO 8601)
    log          TEXT NOT NULL,   -- JSON: the last harvest's counts
    PRIMARY KEY (endpoint, set_spec)
);
-- Email digests (service.query.digest): who wants a collection's new papers, and which papers
-- each was sent (written once the mail server accepted the mail: nothing is sent twice).
CREATE TABLE IF NOT EXISTS subscribers (
    collection   TEXT NOT NULL,
    email        TEXT NOT NULL,
    token        TEXT NOT NULL UNIQUE,   -- the secret in the unsubscribe link
    created_at   TEXT NOT NULL,
    PRIMARY KEY (collection, email)
);
CREATE TABLE IF NOT EXISTS digest_sent (
    collection   TEXT NOT NULL,
    email        TEXT NOT NULL,
    paper_id     TEXT NOT NULL,
    sent_at      TEXT NOT NULL,
    PRIMARY KEY (collection, email, paper_id)
);
-- Thumbs up/down on a collection's papers (service.query.feedback): the rating also moves the
-- paper into the collection's positive or negative list and its seen list.
CREATE TABLE IF NOT EXISTS collection_ratings (
    collection   TEXT NOT NULL,
    paper_id     TEXT NOT NULL,
    rating       TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    rated_at     TEXT NOT NULL,
    PRIMARY KEY (collection, paper_id)
);
-- Curation (service.query.curation): topics renamed, merged and papers moved by hand. Each edit
-- names topics as numbered in the build it was made in, with those topics' papers then, so it
-- is found again in every later build; its lineage says where it applied in each build served.
CREATE TABLE IF NOT EXISTS topic_edits (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,      -- rename, merge or move
    topic        INTEGER NOT NULL,   -- the topic renamed, merged into or moved to
    build_id     TEXT NOT NULL,      -- the build whose topic ids it names
    name         TEXT NOT NULL,      -- rename: the name given (else empty)
    sources      TEXT NOT NULL,      -- JSON list: merge: topic ids merged; move: paper ids
    anchors      TEXT NOT NULL,      -- JSON {topic id: [paper ids]}: the named topics' papers
    created_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS topic_edit_lineage (
    edit         INTEGER NOT NULL REFERENCES topic_edits(id) ON DELETE CASCADE,
    build_id     TEXT NOT NULL,
    topic        INTEGER,            -- the topic it applied to in that build; NULL: orphaned
    note         TEXT NOT NULL,
    PRIMARY KEY (edit, build_id)
);
CREATE TRIGGER IF NOT EXISTS bump_on_edit AFTER INSERT ON topic_edits
    BEGIN UPDATE serving_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS bump_on_undo AFTER DELETE ON topic_edits
    BEGIN UPDATE serving_version SET version = version + 1; END;
"""
NEWEST_SCHEMA_OBJECTS = (
    "subtopic_papers",
    "collections",
    "sync_state",
    "subscribers",
    "digest_sent",
    "collection_ratings",
    "bump_on_undo",
)
"""The objects added last to :data:`SCHEMA`: a database lacking one gets the missing objects
(every statement is ``IF NOT EXISTS``), so older databases are migrated on open."""


_DAMAGE = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_STORAGE = {
    "SQLITE_FULL": errno.ENOSPC,
    "SQLITE_READONLY": errno.EROFS,
    "SQLITE_CANTOPEN": errno.EACCES,
    "SQLITE_PERM": errno.EACCES,
    "SQLITE_IOERR": errno.EIO,
}


def database_error(err: sqlite3.Error, path: Path) -> PaperscopeError | None:
    """What an SQLite error on the papers database means for a user (None: a plain bug)."""
    name = getattr(err, "sqlite_errorname", "") or ""
    if name.startswith(_DAMAGE):
        return DatabaseDamaged(
            f"the papers database {path} is damaged ({err}); check it with: paperscope verify; "
            "restore a backup or ingest the papers again into a new data folder"
        )
    code = next((c for prefix, c in _STORAGE.items() if name.startswith(prefix)), None)
    if code is None:
        return None
    if code == errno.EIO and _nearly_full(path):  # e.g. no room for the WAL index (-shm)
        code = errno.ENOSPC
    if code in (errno.EACCES, errno.EIO) and _read_only(path.parent):
        code = errno.EROFS  # SQLite cannot open a WAL database it cannot write beside
    doing = "opening" if name.startswith("SQLITE_CANTOPEN") else "writing"
    reason = f"{os.strerror(code)} (SQLite: {err})"
    return storage_error(OSError(code, reason, str(path)), f"{doing} the papers database")


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _nearly_full(path: Path) -> bool:
    """Whether the database's filesystem has less than 1 MB left: SQLite reports a failed
    write of its WAL index as an I/O error, whatever the cause."""
    try:
        return shutil.disk_usage(path.parent).free < 1_000_000
    except OSError:
        return False


_S = TypeVar("_S", bound="Store")
_P = ParamSpec("_P")
_T = TypeVar("_T")


def _translated(method: Callable[Concatenate[_S, _P], _T]) -> Callable[Concatenate[_S, _P], _T]:
    """Raise a :func:`database_error` in place of the SQLite error it describes."""

    def wrapper(store: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        with _translating(store.path):
            return method(store, *args, **kwargs)

    functools.update_wrapper(wrapper, method)
    return wrapper


@contextmanager
def _translating(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as err:
        translated = database_error(err, path)
        if translated is None:
            raise
        raise translated from err


def integrity_problems(path: Path, quick: bool = False) -> list[str]:
    """What SQLite's ``integrity_check`` (or the faster ``quick_check``) finds wrong with a
    papers database, then (when SQLite finds nothing) what :func:`_content_problems` finds;
    empty when it is sound. Opened without creating or migrating anything."""
    if not path.is_file():
        return [f"{path} does not exist"]
    pragma = "quick_check" if quick else "integrity_check"
    # on a read-only filesystem SQLite opens a WAL database only as immutable (nothing writes)
    mode = "ro&immutable=1" if _read_only(path.parent) else "rw"
    try:
        db = sqlite3.connect(f"file:{path}?mode={mode}", uri=True)
        try:
            found = [str(row[0]) for row in db.execute(f"PRAGMA {pragma}")]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if found == ["ok"] and "papers" not in tables:
                return ["no papers table: not a paperscope database"]
            if found == ["ok"]:
                return _content_problems(db)
        finally:
            db.close()
    except sqlite3.DatabaseError as err:
        translated = database_error(err, path)
        if translated is not None and not isinstance(translated, DatabaseDamaged):
            raise translated from err  # it could not be checked: not a finding
        return [str(err)]
    return found


UNIT_TOLERANCE = 1e-2
"""How far from length 1 a stored vector may be (they are stored L2-normalised)."""


def _unit(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Which rows are finite vectors of length 1: flipped bytes almost always break that."""
    with np.errstate(all="ignore"):
        norms = np.linalg.norm(vectors.astype(np.float64), axis=-1)
    unit: npt.NDArray[np.bool_] = np.isfinite(norms) & (np.abs(norms - 1.0) <= UNIT_TOLERANCE)
    return unit


def _content_problems(db: sqlite3.Connection) -> list[str]:
    """Damage SQLite cannot see (it keeps no checksum of row contents): papers whose text no
    longer matches their content hash, stored vectors no longer of length 1."""
    problems = []
    changed = [
        paper_id
        for paper_id, title, abstract, text_hash in db.execute(
            "SELECT id, title, abstract, content_hash FROM papers"
        )
        if content_hash(title, abstract) != text_hash
    ]
    if changed:
        problems.append(f"{len(changed)} papers' text does not match its hash: {changed[:5]}")
    for table, key in (("embeddings", "content_hash"), ("live_papers", "id")):
        bad: list[str] = []
        rows = db.execute(f"SELECT {key}, vector FROM {table}")  # noqa: S608
        while chunk := rows.fetchmany(10_000):
            for size in {len(blob) for _, blob in chunk}:  # one matrix per vector length
                names = [str(name) for name, blob in chunk if len(blob) == size]
                blobs = b"".join(blob for _, blob in chunk if len(blob) == size)
                if size % 4:
                    bad += names
                    continue
                matrix = np.frombuffer(blobs, dtype=np.float32).reshape(len(names), -1)
                bad += [n for n, ok in zip(names, _unit(matrix), strict=True) if not ok]
        if bad:
            problems.append(f"{len(bad)} vectors in {table} are damaged: {bad[:5]}")
    return problems


class StoredSplit(NamedTuple):
    """A topic split on request: its sub-topics (id -> name, keywords) and their papers."""

    id: int
    topic: int
    build_id: str
    created_at: str
    subtopics: dict[int, tuple[str, list[str]]]
    paper_subtopic: dict[str, int]


class Subscriber(NamedTuple):
    """Someone who gets a collection's digest; ``token`` is their unsubscribe link's secret."""

    collection: str
    email: str
    token: str
    created_at: str


class StoredEdit(NamedTuple):
    """A curation edit (see :mod:`service.query.curation`): ``topic`` and the topic ids in
    ``sources`` (merge) are numbered as in build ``build_id``; ``anchors`` holds each named
    topic's paper ids then, so the edit can be found again in later builds."""

    id: int
    kind: str
    topic: int
    build_id: str
    name: str
    sources: list[int | str]
    anchors: dict[int, list[str]]
    created_at: str


class EditLineage(NamedTuple):
    """Where an edit applied in one build: ``topic`` None when it found no topic (orphaned)."""

    edit: int
    build_id: str
    topic: int | None
    note: str


class LiveRow(NamedTuple):
    """A paper added live, with where it was placed in build ``build_id``."""

    paper: Paper
    build_id: str
    topic: int
    x: float
    y: float
    vector: npt.NDArray[np.float32]
    added_at: str


def hash_corpus(pairs: Iterable[tuple[str, str]]) -> str:
    """sha256 over (paper id, content hash) pairs in id order."""
    digest = hashlib.sha256()
    for paper_id, text_hash in pairs:
        digest.update(f"{paper_id}\t{text_hash}\n".encode())
    return digest.hexdigest()


def content_hash(title: str, abstract: str) -> str:
    return hashlib.sha256(f"{title}\n{abstract}".encode()).hexdigest()


def paper_fields(paper: Paper) -> tuple[str, str, str, str, str | None, str]:
    """A paper's columns as stored (lists as JSON), in the papers table's order after the id."""
    return (
        paper.title,
        paper.abstract,
        json.dumps(paper.authors),
        json.dumps(paper.categories),
        paper.date,
        paper.source,
    )


def row_to_paper(row: sqlite3.Row) -> Paper:
    """The inverse of :func:`paper_fields` for a row with named columns."""
    return Paper(
        id=row["id"],
        title=row["title"],
        abstract=row["abstract"],
        authors=json.loads(row["authors"]),
        categories=json.loads(row["categories"]),
        date=row["date"],
        source=row["source"],
    )


class Store:
    """A connection to one papers database. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise storage_error(err, "creating the data folder") from err
        # A long ingest holds the write lock; others wait for it rather than fail at once.
        with _translating(path):
            self._db = sqlite3.connect(path, isolation_level=None, timeout=600)
            try:
                self._open()
            except BaseException:
                self._db.close()
                raise

    def _open(self) -> None:
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        marks = ",".join("?" * len(NEWEST_SCHEMA_OBJECTS))
        present = {
            row[0]
            for row in self._db.execute(  # the newest schema objects: create what is missing
                f"SELECT name FROM sqlite_master WHERE name IN ({marks})",  # noqa: S608 - '?'
                NEWEST_SCHEMA_OBJECTS,
            )
        }
        if present != set(NEWEST_SCHEMA_OBJECTS):
            self._db.executescript(SCHEMA)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction, committed whole or rolled back whole (a full disk at COMMIT
        included: SQLite may have rolled back already, so only an open one is rolled back)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    @_translated
    def ensure_sound(self) -> None:
        """DatabaseDamaged unless SQLite's ``quick_check`` passes (about 0.5 s per 300 MB):
        before writing to the database or serving from it, not on every read."""
        found = [str(row[0]) for row in self._db.execute("PRAGMA quick_check")]
        if found != ["ok"]:
            raise DatabaseDamaged(
                f"the papers database {self.path} is damaged ({found[0]}); check it with: "
                "paperscope verify; restore a backup or ingest the papers again"
            )

    # -- papers -----------------------------------------------------------------------------

    @_translated
    def ingest(self, records: Iterable[Paper | Rejected], report: IngestReport) -> IngestReport:
        """Upsert every paper of one file in a single transaction; rejected records are listed.

        If anything raises (a reader error, an interrupt), the whole file is rolled back.
        """
        with self._write():
            self._upsert_all(records, report)
        return report

    def _upsert_all(self, records: Iterable[Paper | Rejected], report: IngestReport) -> None:
        for record in records:
            if isinstance(record, Rejected):
                report.rejected.append(record)
                continue
            outcome = self._upsert(record)
            setattr(report, outcome, getattr(report, outcome) + 1)

    def _upsert(self, paper: Paper) -> str:
        row = (*paper_fields(paper), content_hash(paper.title, paper.abstract))
        old = self._db.execute(
            "SELECT title, abstract, authors, categories, date, source, content_hash "
            "FROM papers WHERE id = ?",
            (paper.id,),
        ).fetchone()
        if old is None:
            self._db.execute("INSERT INTO papers VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (paper.id, *row))
            return "new"
        if tuple(old) == row:
            return "unchanged"
        self._db.execute(
            "UPDATE papers SET title=?, abstract=?, authors=?, categories=?, date=?, source=?, "
            "content_hash=? WHERE id=?",
            (*row, paper.id),
        )
        return "updated"

    @_translated
    def harvest_page(
        self, records: Iterable[Paper | Rejected], deleted: Iterable[str], report: IngestReport
    ) -> int:
        """One page of a harvest in one transaction: papers upserted as :meth:`ingest` does,
        the ids the repository deleted removed; returns how many of those were stored."""
        with self._write():
            self._upsert_all(records, report)
            delete = "DELETE FROM papers WHERE id = ?"
            return sum(self._db.execute(delete, (paper_id,)).rowcount for paper_id in deleted)

    @_translated
    def sync_state(self, endpoint: str, set_spec: str) -> tuple[str, str] | None:
        """Where the harvest of this endpoint and set resumes, and when it last completed."""
        row = self._db.execute(
            "SELECT resume_from, synced_at FROM sync_state WHERE endpoint = ? AND set_spec = ?",
            (endpoint, set_spec),
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    @_translated
    def save_sync(
        self, endpoint: str, set_spec: str, resume_from: str, synced_at: str, log: str
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO sync_state VALUES (?, ?, ?, ?, ?)",
            (endpoint, set_spec, resume_from, synced_at, log),
        )

    @_translated
    def last_synced(self) -> str | None:
        """When any harvest last completed (None: never)."""
        row = self._db.execute("SELECT MAX(synced_at) FROM sync_state").fetchone()
        return str(row[0]) if row and row[0] else None

    @_translated
    def delete(self, paper_id: str) -> bool:
        """Remove a paper (its cached embedding stays, keyed by content; a live placement goes
        with it). True if it existed."""
        cursor = self._db.execute("DELETE FROM papers WHERE id = ?", (paper_id,))
        return cursor.rowcount > 0

    @_translated
    def ids(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT id FROM papers")}

    @_translated
    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM papers").fetchone()[0])

    @_translated
    def get(self, paper_id: str) -> Paper | None:
        row = self._db.execute("SELECT * FROM papers WHERE id = ?", (paper_id,)).fetchone()
        return row_to_paper(row) if row else None

    def papers(self) -> Iterator[tuple[Paper, str]]:
        """Every paper with its content hash, in id order (the order of a build's rows)."""
        with _translating(self.path):
            for row in self._db.execute("SELECT * FROM papers ORDER BY id"):
                yield row_to_paper(row), row["content_hash"]

    @_translated
    def corpus_hash(self) -> str:
        """One hash of every (id, content hash): equal hashes mean the same embedded corpus."""
        rows = self._db.execute("SELECT id, content_hash FROM papers ORDER BY id")
        return hash_corpus((paper_id, text_hash) for paper_id, text_hash in rows)

    @_translated
    def snapshot(self) -> list[tuple[Paper, str]]:
        """Every paper with its content hash, read in one transaction (a consistent view even
        while an ingest commits), in id order."""
        self._db.execute("BEGIN")
        try:
            return list(self.papers())
        finally:
            self._db.execute("COMMIT")

    # -- embedding cache --------------------------------------------------------------------

    @_translated
    def cached_embeddings(
        self, model: str, hashes: Iterable[str]
    ) -> dict[str, npt.NDArray[np.float32]]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, npt.NDArray[np.float32]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for text_hash, blob in self._db.execute(
                f"SELECT content_hash, vector FROM embeddings "  # noqa: S608 - marks are '?'
                f"WHERE model = ? AND content_hash IN ({marks})",
                (model, *chunk),
            ):
                vector = np.frombuffer(blob, dtype=np.float32) if len(blob) % 4 == 0 else None
                if vector is not None and _unit(vector):
                    found[text_hash] = vector
                else:  # damaged on disk: embedded again (and replaced) rather than served
                    log.warning("cached embedding %s is damaged; embedding it again", text_hash)
        return found

    @_translated
    def save_embeddings(
        self, model: str, hashes: list[str], vectors: npt.NDArray[np.float32]
    ) -> None:
        rows = (
            (model, h, v.astype(np.float32).tobytes()) for h, v in zip(hashes, vectors, strict=True)
        )
        with self._write():
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)

    @_translated
    def forget_embeddings(self, hashes: Iterable[str]) -> int:
        """Drop the cached embeddings of these texts, under every model (a benchmark's held-out
        papers must be embedded again); how many were dropped."""
        wanted = list(dict.fromkeys(hashes))
        forgotten = 0
        with self._write():
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                sql = f"DELETE FROM embeddings WHERE content_hash IN ({marks})"  # noqa: S608 - '?'
                forgotten += self._db.execute(sql, chunk).rowcount
        return forgotten

    # -- live additions ---------------------------------------------------------------------

    @_translated
    def add_live(self, papers: list[Paper], placed: list[LiveRow]) -> list[str]:
        """Upsert posted papers and record where they were placed, in one transaction.

        Returns each paper's outcome (new / updated / unchanged).
        """
        with self._write():
            outcomes = [self._upsert(paper) for paper in papers]
            self._save_live(placed)
        return outcomes

    @_translated
    def move_live(self, placed: list[LiveRow]) -> None:
        """Record new placements of papers already stored (re-placed against another build)."""
        with self._write():
            self._save_live(placed)

    def _save_live(self, placed: list[LiveRow]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO live_papers VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (r.paper.id, r.build_id, r.topic, r.x, r.y, r.vector.tobytes(), r.added_at)
                for r in placed
            ),
        )

    @_translated
    def serving_version(self) -> int:
        """A number that changes whenever papers are deleted or added live."""
        return int(self._db.execute("SELECT version FROM serving_version").fetchone()[0])

    @_translated
    def live_rows(self) -> list[LiveRow]:
        """Every live addition with its stored paper, oldest first."""
        rows = self._db.execute(
            "SELECT p.*, l.build_id, l.topic, l.x, l.y, l.vector, l.added_at "
            "FROM live_papers l JOIN papers p ON p.id = l.id ORDER BY l.added_at, l.id"
        )
        return [
            LiveRow(
                row_to_paper(r),
                r["build_id"],
                r["topic"],
                r["x"],
                r["y"],
                np.frombuffer(r["vector"], dtype=np.float32),
                r["added_at"],
            )
            for r in rows
        ]

    # -- topic splits -----------------------------------------------------------------------

    @_translated
    def save_split(
        self,
        topic: int,
        build_id: str,
        created_at: str,
        subtopics: dict[int, tuple[str, list[str]]],
        paper_subtopic: dict[str, int],
        replaces: list[int],
    ) -> int:
        """Store a topic's split (replacing the splits ``replaces``) in one transaction; its id."""
        with self._write():
            for old in replaces:
                self._db.execute("DELETE FROM topic_splits WHERE id = ?", (old,))
            cursor = self._db.execute(
                "INSERT INTO topic_splits (topic, build_id, created_at) VALUES (?, ?, ?)",
                (topic, build_id, created_at),
            )
            split = int(cursor.lastrowid or 0)
            self._db.executemany(
                "INSERT INTO subtopics VALUES (?, ?, ?, ?)",
                ((split, s, name, json.dumps(words)) for s, (name, words) in subtopics.items()),
            )
            self._db.executemany(
                "INSERT INTO subtopic_papers VALUES (?, ?, ?)",
                ((split, paper, s) for paper, s in paper_subtopic.items()),
            )
        return split

    @_translated
    def splits(self) -> list[StoredSplit]:
        """Every stored split, newest first."""
        heads = self._db.execute(
            "SELECT id, topic, build_id, created_at FROM topic_splits ORDER BY id DESC"
        ).fetchall()
        out = []
        for head in heads:
            subtopics = {
                int(r["id"]): (str(r["name"]), list(json.loads(r["keywords"])))
                for r in self._db.execute(
                    "SELECT id, name, keywords FROM subtopics WHERE split = ? ORDER BY id",
                    (head["id"],),
                )
            }
            papers = {
                str(r[0]): int(r[1])
                for r in self._db.execute(
                    "SELECT paper_id, subtopic FROM subtopic_papers WHERE split = ?", (head["id"],)
                )
            }
            out.append(
                StoredSplit(
                    int(head["id"]),
                    int(head["topic"]),
                    str(head["build_id"]),
                    str(head["created_at"]),
                    subtopics,
                    papers,
                )
            )
        return out

    # -- curation edits ---------------------------------------------------------------------

    @_translated
    def save_edit(self, edit: StoredEdit) -> int:
        """Store a curation edit (its ``id`` is ignored); returns its id."""
        anchors = {str(t): papers for t, papers in edit.anchors.items()}
        cursor = self._db.execute(
            "INSERT INTO topic_edits (kind, topic, build_id, name, sources, anchors, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                edit.kind,
                edit.topic,
                edit.build_id,
                edit.name,
                json.dumps(edit.sources),
                json.dumps(anchors),
                edit.created_at,
            ),
        )
        return int(cursor.lastrowid or 0)

    @_translated
    def edits(self) -> list[StoredEdit]:
        """Every curation edit, oldest first (the order they are applied in)."""
        rows = self._db.execute("SELECT * FROM topic_edits ORDER BY id")
        return [
            StoredEdit(
                int(r["id"]),
                str(r["kind"]),
                int(r["topic"]),
                str(r["build_id"]),
                str(r["name"]),
                list(json.loads(r["sources"])),
                {int(t): list(p) for t, p in json.loads(r["anchors"]).items()},
                str(r["created_at"]),
            )
            for r in rows
        ]

    @_translated
    def delete_edit(self, edit_id: int) -> bool:
        """Undo a curation edit (its lineage goes with it); True if it existed."""
        cursor = self._db.execute("DELETE FROM topic_edits WHERE id = ?", (edit_id,))
        return cursor.rowcount > 0

    @_translated
    def record_lineage(self, entries: list[EditLineage]) -> None:
        """Record where edits applied in a build; an edit's first record per build is kept."""
        with self._write():
            self._db.executemany(
                "INSERT OR IGNORE INTO topic_edit_lineage VALUES (?, ?, ?, ?)", entries
            )

    @_translated
    def edit_lineage(self) -> list[EditLineage]:
        """Every lineage record, per edit in the order the builds were served."""
        rows = self._db.execute(
            "SELECT edit, build_id, topic, note FROM topic_edit_lineage ORDER BY edit, rowid"
        )
        return [EditLineage(int(r[0]), str(r[1]), r[2], str(r[3])) for r in rows]

    # -- collections ------------------------------------------------------------------------

    @_translated
    def put_collection(self, name: str, body: CollectionIn, now: str) -> tuple[Collection, bool]:
        """Create or replace a collection; True when it is new. ``created_at`` is kept."""
        with self._write():
            old = self._db.execute(
                "SELECT created_at FROM collections WHERE name = ?", (name,)
            ).fetchone()
            created = old[0] if old else now
            self._db.execute(
                "INSERT OR REPLACE INTO collections VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    json.dumps(body.positive),
                    json.dumps(body.negative),
                    json.dumps(body.seen),
                    body.note,
                    created,
                    now,
                ),
            )
        return Collection(name=name, created_at=created, updated_at=now, **body.model_dump()), (
            old is None
        )

    @_translated
    def collection(self, name: str) -> Collection | None:
        row = self._db.execute("SELECT * FROM collections WHERE name = ?", (name,)).fetchone()
        return _row_to_collection(row) if row else None

    @_translated
    def collections(self) -> list[Collection]:
        """Every collection, by name."""
        rows = self._db.execute("SELECT * FROM collections ORDER BY name")
        return [_row_to_collection(row) for row in rows]

    @_translated
    def delete_collection(self, name: str) -> bool:
        with self._write():
            self._db.execute("DELETE FROM collection_ratings WHERE collection = ?", (name,))
            cursor = self._db.execute("DELETE FROM collections WHERE name = ?", (name,))
        return cursor.rowcount > 0

    # -- digest subscribers --------------------------------------------------------------------

    @_translated
    def subscribe(self, subscriber: Subscriber) -> tuple[Subscriber, bool]:
        """Add a subscriber; True when new. One already there keeps its token and date."""
        with self._write():
            self._db.execute(
                "INSERT OR IGNORE INTO subscribers VALUES (?, ?, ?, ?)", tuple(subscriber)
            )
            row = self._db.execute(
                "SELECT * FROM subscribers WHERE collection = ? AND email = ?",
                (subscriber.collection, subscriber.email),
            ).fetchone()
        stored = Subscriber(*row)
        return stored, stored.token == subscriber.token

    @_translated
    def subscribers(self, collection: str | None = None) -> list[Subscriber]:
        """The subscribers of one collection (every one when None), by collection and email."""
        rows = self._db.execute(
            "SELECT * FROM subscribers WHERE ? IS NULL OR collection = ? "
            "ORDER BY collection, email",
            (collection, collection),
        )
        return [Subscriber(*row) for row in rows]

    @_translated
    def unsubscribe(self, collection: str, email: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM subscribers WHERE collection = ? AND email = ?", (collection, email)
        )
        return cursor.rowcount > 0

    @_translated
    def unsubscribe_token(self, token: str) -> Subscriber | None:
        """Remove the subscriber this unsubscribe token belongs to; None when none does."""
        with self._write():
            row = self._db.execute("SELECT * FROM subscribers WHERE token = ?", (token,)).fetchone()
            if row is not None:
                self._db.execute("DELETE FROM subscribers WHERE token = ?", (token,))
        return Subscriber(*row) if row is not None else None

    @_translated
    def forget_subscribers(self, collection: str) -> None:
        """Drop a deleted collection's subscribers (its sent record stays)."""
        self._db.execute("DELETE FROM subscribers WHERE collection = ?", (collection,))

    @_translated
    def sent_papers(self, collection: str, email: str) -> set[str]:
        """The papers a subscriber's digests of this collection already carried."""
        rows = self._db.execute(
            "SELECT paper_id FROM digest_sent WHERE collection = ? AND email = ?",
            (collection, email),
        )
        return {str(row[0]) for row in rows}

    @_translated
    def record_sent(self, collection: str, email: str, paper_ids: list[str], now: str) -> None:
        """Remember that these papers reached this subscriber (after the server accepted them)."""
        with self._write():
            self._db.executemany(
                "INSERT OR IGNORE INTO digest_sent VALUES (?, ?, ?, ?)",
                ((collection, email, paper_id, now) for paper_id in paper_ids),
            )

    @_translated
    def rate(self, name: str, paper_id: str, up: bool, now: str) -> Collection | None:
        """Record a thumbs up (``up``) or down on a paper of collection ``name`` and move the
        paper into its positive or negative list and its seen list, in one transaction; None
        when there is no such collection. InvalidInput when a list would outgrow its limit."""
        with self._write():
            row = self._db.execute("SELECT * FROM collections WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            old = _row_to_collection(row)
            body = rated(old, paper_id, up)
            self._db.execute(
                "UPDATE collections SET positive = ?, negative = ?, seen = ?, updated_at = ? "
                "WHERE name = ?",
                (
                    json.dumps(body.positive),
                    json.dumps(body.negative),
                    json.dumps(body.seen),
                    now,
                    name,
                ),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO collection_ratings VALUES (?, ?, ?, ?)",
                (name, paper_id, "up" if up else "down", now),
            )
        return Collection(name=name, created_at=old.created_at, updated_at=now, **body.model_dump())

    @_translated
    def ratings(self, name: str) -> dict[str, str]:
        """Collection ``name``'s ratings: paper id -> "up" or "down", oldest first."""
        rows = self._db.execute(
            "SELECT paper_id, rating FROM collection_ratings WHERE collection = ? "
            "ORDER BY rated_at, rowid",
            (name,),
        )
        return {row[0]: row[1] for row in rows}


def rated(old: CollectionIn, paper_id: str, up: bool) -> CollectionIn:
    """The collection's lists after a rating: the paper moves to the end of the positive (up) or
    negative (down) list, leaves the other, and joins the seen list. Checked against the lists'
    limits (InvalidInput)."""
    positive = [i for i in old.positive if i != paper_id] + ([paper_id] if up else [])
    negative = [i for i in old.negative if i != paper_id] + ([] if up else [paper_id])
    seen = old.seen if paper_id in old.seen else [*old.seen, paper_id]
    if not positive:
        raise InvalidInput("a collection keeps at least one positive paper")
    try:
        return CollectionIn(positive=positive, negative=negative, seen=seen, note=old.note)
    except ValueError:
        raise InvalidInput(
            "the collection is full (500 positive, 500 negative, 10,000 seen papers at most)"
        ) from None


def _row_to_collection(row: sqlite3.Row) -> Collection:
    return Collection(
        name=row["name"],
        positive=json.loads(row["positive"]),
        negative=json.loads(row["negative"]),
        seen=json.loads(row["seen"]),
        note=row["note"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


# -- backups ----------------------------------------------------------------------------------


def backup_database(source: Path, target: Path) -> int:
    """Copy the database into the new file ``target`` with SQLite's online backup API; returns
    the papers the copy holds.

    All pages are copied in one step, inside one read transaction: the copy is the database as
    it was when the step began, and writers (WAL mode) carry on meanwhile. The copy is switched
    to a rollback journal so that it is one self-contained file.
    """
    if not source.is_file():
        raise InvalidInput(f"no papers database at {source}; nothing to back up")
    src = sqlite3.connect(source, timeout=600)
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
        return int(dst.execute("SELECT COUNT(*) FROM papers").fetchone()[0])
    except sqlite3.Error as err:  # a full disk, a damaged source
        raise PaperscopeError(f"cannot copy {source} to {target}: {err}") from None
    finally:
        dst.close()
        src.close()


def replace_database(new: Path, db_path: Path) -> None:
    """Put the database file ``new`` (in the same folder) in the place of ``db_path`` at once.

    The old database is first taken out of WAL mode: that checkpoints its write-ahead log and
    removes it (a log left beside the new file would be replayed into it), and SQLite refuses it
    while another connection has the database open, so a database in use is not replaced. The
    swap happens under an exclusive lock, so no reader sees the old file's log with the new file.
    """
    old = sqlite3.connect(db_path, isolation_level=None, timeout=5) if db_path.exists() else None
    try:
        if old is not None:
            try:
                old.execute("PRAGMA journal_mode=DELETE")
                old.execute("BEGIN EXCLUSIVE")
            except sqlite3.DatabaseError as err:
                if "locked" in str(err):
                    raise InvalidInput(
                        f"{db_path} is in use (a server, a build or an ingest has it open); "
                        "stop it and run restore again"
                    ) from None
                if not any(word in str(err) for word in ("not a database", "malformed")):
                    raise PaperscopeError(f"cannot replace {db_path}: {err}") from None
                _remove_log(db_path)  # the old database is damaged: its log is worth nothing
        fsync(new)
        os.replace(new, db_path)
        fsync(db_path.parent)
    finally:
        if old is not None:
            old.close()


def _remove_log(db_path: Path) -> None:
    for suffix in ("-wal", "-shm", "-journal"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
