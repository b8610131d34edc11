"""The build folder's one owner: its layout, typed readers and writers, the manifest, the
``CURRENT`` pointer, publishing and pruning. No other module names an artifact file or opens a
build's SQLite snapshot.

Layout of the data directory::

    papers.sqlite            the store (papers + embedding cache; see service.store)
    builds/<build_id>/       one folder per build (the names below)
    builds/CURRENT           the id of the published build (replaced atomically)

A build is written into ``builds/.tmp-<id>`` (:func:`staging_dir`), made durable, renamed into
place and only then published by swapping ``CURRENT`` (:func:`publish`), so a reader never sees
half a build and a crash leaves the previous build serving. The manifest, written last, records
the size and BLAKE2b digest of every other file (:func:`write_manifest`); they are verified on
publishing and on every load (:func:`verify_files`), so flipped or truncated bytes are refused,
never served.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from service.config import Settings
from service.errors import BuildDamaged, InvalidInput, NotFound, NotReady, SyncRunning
from service.files import digest, fsync
from service.schemas import BuildManifest, FileChecksum, Paper
from service.search.index import load_index, save_index
from service.search.lexical import LexicalIndex
from service.search.neighbours import Lists
from service.store import content_hash, paper_fields, row_to_paper

MANIFEST = "manifest.json"
EMBEDDINGS = "embeddings.npy"
"""One L2-normalised float32 row per paper, memory-mapped when served."""
INDEX = "index.faiss"
PAPERS = "papers.sqlite"
"""A snapshot of the build's papers in row order, with each paper's topic."""
TOPICS = "topics.json"
ASSIGNMENTS = "assignments.npy"
"""Each row's topic id (-1: unclustered)."""
OUTLIERS = "outliers.npy"
"""Each row's outlier flag: HDBSCAN (or the placement vote) called it noise (optional)."""
CONFIDENCE = "confidence.npy"
"""Each row's confidence in its topic, 0-1: the share of its neighbours' vote (optional)."""
MAP = "map.npy"
"""Each row's 2-D map position in [0, 1]."""
REDUCED = "reduced.npy"
"""Each row's position in the clustering space (UMAP), for placing new papers."""
CLUSTERER = "clusterer.joblib"
"""The fitted HDBSCAN clusterer (with prediction data), for placing new papers."""
DUPLICATES = "duplicates.json"
NEIGHBOUR_ROWS = "neighbours.npy"
NEIGHBOUR_SCORES = "neighbour_scores.npy"
LEXICAL = "lexical"
"""A folder: the BM25 index (see service.search.lexical)."""

CURRENT = "CURRENT"
KEEP_BUILDS = 3
SERVED = (MANIFEST, EMBEDDINGS, INDEX, PAPERS, TOPICS, ASSIGNMENTS, MAP)
"""What a build must hold to be served."""
UNREADABLE: tuple[type[Exception], ...] = (OSError, ValueError, KeyError, sqlite3.Error)
"""What reading a missing or damaged build file raises (its snapshot included, so callers
need not know it is SQLite)."""


# -- topics.json ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicEntry:
    id: int
    label: str
    keywords: list[str]
    members: list[int]
    """Rows, closest to the topic's centre first."""
    parents: list[tuple[int, int]] = field(default_factory=list)
    """(previous build's topic id, papers shared)."""
    name: str = ""
    """A short name (1-4 words); builds made before names had none: their label stands in."""


@dataclass(frozen=True)
class GroupEntry:
    id: int
    label: str
    keywords: list[str]
    children: list[int]
    name: str = ""


@dataclass(frozen=True)
class TopicsFile:
    """The topics of a build: labels, members, lineage and the coarse groups."""

    topics: list[TopicEntry]
    groups: list[GroupEntry]
    hdbscan_to_topic: dict[int, int]
    next_topic_id: int
    previous_build: str | None


def _topics_payload(topics: TopicsFile) -> dict[str, Any]:
    return {
        "next_topic_id": topics.next_topic_id,
        "previous_build": topics.previous_build,
        "hdbscan_to_topic": {str(k): v for k, v in topics.hdbscan_to_topic.items()},
        "topics": [
            {
                "id": t.id,
                "label": t.label,
                "keywords": t.keywords,
                "members": t.members,
                "parents": [{"id": p, "shared": n} for p, n in t.parents],
                "name": t.name,
            }
            for t in topics.topics
        ],
        "groups": [
            {
                "id": g.id,
                "label": g.label,
                "keywords": g.keywords,
                "children": g.children,
                "name": g.name,
            }
            for g in topics.groups
        ],
    }


def _parse_topics(raw: dict[str, Any]) -> TopicsFile:
    entries = [
        TopicEntry(
            int(t["id"]),
            t["label"],
            list(t["keywords"]),
            [int(m) for m in t["members"]],
            [(int(p["id"]), int(p["shared"])) for p in t.get("parents", [])],
            t.get("name") or t["label"],
        )
        for t in raw["topics"]
    ]
    ids = [t.id for t in entries if t.id >= 0]
    return TopicsFile(
        topics=entries,
        groups=[
            GroupEntry(
                int(g["id"]),
                g["label"],
                list(g["keywords"]),
                [int(c) for c in g["children"]],
                g.get("name") or g["label"],
            )
            for g in raw.get("groups", [])
        ],
        hdbscan_to_topic={int(k): int(v) for k, v in raw.get("hdbscan_to_topic", {}).items()},
        next_topic_id=int(raw.get("next_topic_id", max(ids, default=-1) + 1)),
        previous_build=raw.get("previous_build"),
    )


# -- the papers snapshot ----------------------------------------------------------------------


@dataclass(frozen=True)
class PaperSummaries:
    """What a result shows of every build paper, in row order (held in memory when served)."""

    ids: list[str]
    titles: list[str]
    dates: list[str | None]
    categories: list[list[str]]


class PapersSnapshot:
    """The build's papers, read-only; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def summaries(self) -> PaperSummaries:
        rows = self._all("SELECT id, title, date, categories FROM papers ORDER BY row")
        return PaperSummaries(
            [r["id"] for r in rows],
            [r["title"] for r in rows],
            [r["date"] for r in rows],
            [json.loads(r["categories"]) for r in rows],
        )

    def papers_at(self, rows: list[int]) -> dict[int, Paper]:
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        sql = f"SELECT * FROM papers WHERE row IN ({marks})"  # noqa: S608 - marks are '?'
        return {r["row"]: row_to_paper(r) for r in self._all(sql, rows)}

    def abstracts(self) -> list[str]:
        return [r["abstract"] for r in self._all("SELECT abstract FROM papers ORDER BY row")]

    def row_of_id(self) -> dict[str, int]:
        return {r["id"]: r["row"] for r in self._all("SELECT row, id FROM papers")}

    def topic_of_rows(self) -> list[tuple[int, str, int]]:
        """(row, paper id, topic) in row order."""
        rows = self._all("SELECT row, id, topic FROM papers ORDER BY row")
        return [(r["row"], r["id"], r["topic"]) for r in rows]

    def row_of_content(self) -> dict[tuple[str, str], int]:
        """(paper id, content hash) -> row."""
        rows = self._all("SELECT row, id, title, abstract FROM papers")
        return {(r["id"], content_hash(r["title"], r["abstract"])): r["row"] for r in rows}

    def close(self) -> None:
        self._db.close()


def _write_papers(path: Path, papers: Sequence[Paper], assignments: npt.NDArray[np.int32]) -> None:
    try:
        _write_snapshot(path, papers, assignments)
    except sqlite3.OperationalError as err:  # a full disk or a read-only folder: an OSError
        code = errno.ENOSPC if "full" in str(err) else errno.EIO
        raise OSError(code, os.strerror(code), str(path)) from err


def _write_snapshot(
    path: Path, papers: Sequence[Paper], assignments: npt.NDArray[np.int32]
) -> None:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE papers (row INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, title TEXT, "
        "abstract TEXT, authors TEXT, categories TEXT, date TEXT, source TEXT, topic INTEGER)"
    )
    rows = ((row, p.id, *paper_fields(p), int(assignments[row])) for row, p in enumerate(papers))
    db.executemany("INSERT INTO papers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


# -- one build folder -------------------------------------------------------------------------


class BuildFolder:
    """Typed, read-only access to one published build folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return self.path.name

    def missing(self, names: Sequence[str] = SERVED) -> list[str]:
        return [name for name in names if not (self.path / name).is_file()]

    def verify(self, manifest: BuildManifest) -> list[str]:
        """What is wrong with the files: missing ones, then any that differ from the checksums
        the manifest recorded (empty when sound, or when the build has no checksums)."""
        missing = [f"{name} is missing" for name in self.missing()]
        return missing + verify_files(self.path, manifest)

    def has_placement_basis(self) -> bool:
        """Whether new papers can be placed by the fitted clusterer (else: nearest paper)."""
        return not self.missing((REDUCED, CLUSTERER))

    def manifest(self) -> BuildManifest:
        return BuildManifest.model_validate_json((self.path / MANIFEST).read_text("utf-8"))

    def embeddings(self) -> npt.NDArray[np.float32]:
        """Memory-mapped: a large build's vectors are paged in as they are read."""
        vectors: npt.NDArray[np.float32] = np.load(self.path / EMBEDDINGS, mmap_mode="r")
        return vectors

    def assignments(self) -> npt.NDArray[np.int32]:
        topics: npt.NDArray[np.int32] = np.load(self.path / ASSIGNMENTS)
        return topics

    def outliers(self) -> npt.NDArray[np.bool_] | None:
        """Which rows HDBSCAN called noise; None for builds made before outlier assignment."""
        path = self.path / OUTLIERS
        return np.load(path) if path.is_file() else None

    def confidence(self) -> npt.NDArray[np.float32] | None:
        """Each row's confidence in its topic; None for builds made before it was kept."""
        path = self.path / CONFIDENCE
        return np.load(path) if path.is_file() else None

    def map_coords(self) -> npt.NDArray[np.float32]:
        coords: npt.NDArray[np.float32] = np.load(self.path / MAP)
        return coords

    def reduced(self) -> npt.NDArray[np.float32] | None:
        path = self.path / REDUCED
        return np.load(path) if path.is_file() else None

    def clusterer(self) -> Any:
        """The fitted HDBSCAN clusterer, or None for builds without one."""
        path = self.path / CLUSTERER
        if not path.is_file():
            return None
        import joblib

        return joblib.load(path)  # our own build's file

    def index(self, manifest: BuildManifest | None = None) -> faiss.Index:
        info = (manifest or self.manifest()).index
        return load_index(self.path / INDEX, info)

    def neighbour_lists(self) -> Lists | None:
        """Like-this lists, memory-mapped; None for builds made without them."""
        rows, scores = self.path / NEIGHBOUR_ROWS, self.path / NEIGHBOUR_SCORES
        if not rows.is_file() or not scores.is_file():
            return None
        return np.load(rows, mmap_mode="r"), np.load(scores, mmap_mode="r")

    def lexical(self) -> LexicalIndex | None:
        """The BM25 index; None for builds made before lexical search."""
        folder = self.path / LEXICAL
        return LexicalIndex.load(folder) if folder.is_dir() else None

    def topics(self) -> TopicsFile:
        return _parse_topics(json.loads((self.path / TOPICS).read_text(encoding="utf-8")))

    def duplicates(self) -> list[tuple[int, int, float]]:
        """Likely duplicate pairs (row a, row b, score), most similar first."""
        path = self.path / DUPLICATES
        if not path.is_file():
            return []
        pairs = json.loads(path.read_text(encoding="utf-8"))
        return [(int(p["a"]), int(p["b"]), float(p["score"])) for p in pairs]

    def papers(self) -> PapersSnapshot:
        return PapersSnapshot(self.path / PAPERS)


@dataclass
class NewBuild:
    """Everything a build writes; :func:`write_build` lays it out in a staging folder."""

    vectors: npt.NDArray[np.float32]
    papers: Sequence[Paper]
    assignments: npt.NDArray[np.int32]
    coords: npt.NDArray[np.float32]
    index: faiss.Index
    lexical: LexicalIndex
    topics: TopicsFile
    duplicates: list[tuple[int, int, float]]
    lists: Lists | None = None
    reduced: npt.NDArray[np.float32] | None = None
    clusterer: Any = None
    clusterer_from: BuildFolder | None = None
    """Copy this build's clusterer file when there is no new clusterer (incremental builds)."""
    outliers: npt.NDArray[np.bool_] | None = None
    confidence: npt.NDArray[np.float32] | None = None


def write_build(staging: Path, build: NewBuild) -> None:
    np.save(staging / EMBEDDINGS, build.vectors)
    np.save(staging / ASSIGNMENTS, build.assignments)
    np.save(staging / MAP, build.coords)
    _save_index(build.index, staging / INDEX)
    if build.lists is not None:
        np.save(staging / NEIGHBOUR_ROWS, build.lists[0].astype(np.int32))
        np.save(staging / NEIGHBOUR_SCORES, build.lists[1])
    build.lexical.save(staging / LEXICAL)
    _write_papers(staging / PAPERS, build.papers, build.assignments)
    (staging / TOPICS).write_text(json.dumps(_topics_payload(build.topics)), encoding="utf-8")
    pairs = [{"a": a, "b": b, "score": score} for a, b, score in build.duplicates]
    (staging / DUPLICATES).write_text(json.dumps(pairs), encoding="utf-8")
    if build.reduced is not None:
        np.save(staging / REDUCED, build.reduced)
    if build.outliers is not None:
        np.save(staging / OUTLIERS, build.outliers.astype(np.bool_))
    if build.confidence is not None:
        np.save(staging / CONFIDENCE, build.confidence.astype(np.float32))
    if build.clusterer is not None:
        import joblib

        joblib.dump(build.clusterer, staging / CLUSTERER)
    elif build.clusterer_from is not None and (build.clusterer_from.path / CLUSTERER).is_file():
        shutil.copyfile(build.clusterer_from.path / CLUSTERER, staging / CLUSTERER)


def _save_index(index: faiss.Index, path: Path) -> None:
    """FAISS reports a failed write as a RuntimeError naming the C error: raise it as the
    OSError it is (a full disk is then reported like any other)."""
    try:
        save_index(index, path)
    except RuntimeError as err:
        code = next(
            (
                c
                for c in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EIO)
                if os.strerror(c) in str(err)
            ),
            None,
        )
        if code is None:
            raise
        raise OSError(code, os.strerror(code), str(path)) from err


def checksums(folder: Path) -> dict[str, FileChecksum]:
    """Size and BLAKE2b digest of every file under a build folder except its manifest."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {
        path.relative_to(folder).as_posix(): FileChecksum(
            bytes=path.stat().st_size, blake2b=digest(path)
        )
        for path in files
        if path != folder / MANIFEST
    }


def verify_files(folder: Path, manifest: BuildManifest) -> list[str]:
    """Each file that differs from what the manifest recorded: missing, another size (a
    truncated file), or other bytes. Streams every file once (about 0.5 s per 120 MB)."""
    problems = []
    for name, written in manifest.checksums.items():
        path = folder / name
        try:
            size = path.stat().st_size
            if size != written.bytes:
                problems.append(f"{name} has {size} bytes, {written.bytes} were written")
            elif digest(path) != written.blake2b:
                problems.append(f"{name} does not match its checksum (its bytes changed)")
        except FileNotFoundError:
            problems.append(f"{name} is missing")
        except OSError as err:
            problems.append(f"{name} cannot be read ({err.strerror})")
    return problems


def write_manifest(staging: Path, manifest: BuildManifest) -> BuildManifest:
    """Write the manifest, last, with the checksums of every file already written; returns it."""
    manifest = manifest.model_copy(update={"checksums": checksums(staging)})
    (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2), "utf-8")
    return manifest


# -- the builds folder ------------------------------------------------------------------------


def read_pointer(builds_dir: Path) -> str | None:
    """The build id ``CURRENT`` names, or None when nothing was published yet."""
    try:
        return (builds_dir / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def current_build_dir(builds_dir: Path) -> Path | None:
    """The published build folder, or None when nothing was published yet."""
    build_id = read_pointer(builds_dir)
    if not build_id:
        return None
    folder = builds_dir / build_id
    return folder if folder.is_dir() else None


def require_build(settings: Settings) -> Path:
    """The published build folder; NotReady (with what to run) when there is none."""
    build = current_build_dir(settings.builds_dir)
    if build is None:
        raise NotReady(f"no build in {settings.data_dir}; run: paperscope build")
    return build


def read_manifest(build_dir: Path) -> BuildManifest:
    return BuildFolder(build_dir).manifest()


@dataclass(frozen=True)
class BuildCheck:
    """One build folder checked against its manifest (``paperscope verify``, a build's base)."""

    name: str
    problems: list[str]
    files: int
    """Files with a recorded checksum (0: a build made before checksums, not verifiable)."""


def check_build(build_dir: Path) -> BuildCheck:
    folder = BuildFolder(build_dir)
    try:
        manifest = folder.manifest()
    except FileNotFoundError:
        return BuildCheck(build_dir.name, [f"{MANIFEST} is missing"], 0)
    except (OSError, ValueError) as err:
        reason = str(err).splitlines()[0]
        return BuildCheck(build_dir.name, [f"{MANIFEST} is unreadable ({reason})"], 0)
    return BuildCheck(build_dir.name, folder.verify(manifest), len(manifest.checksums))


def folder_bytes(folder: Path) -> int:
    """The size of the files under a folder (0 when it is gone)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def published_builds(builds_dir: Path) -> list[Path]:
    """Every build folder (oldest first by id, which starts with its UTC time)."""
    if not builds_dir.is_dir():
        return []
    return sorted(p for p in builds_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


@contextmanager
def build_lock(builds_dir: Path) -> Iterator[None]:
    """One build at a time per data folder."""
    builds_dir.mkdir(parents=True, exist_ok=True)
    with (builds_dir / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidInput(f"another build is running in {builds_dir}") from None
        yield


@contextmanager
def sync_lock(path: Path) -> Iterator[None]:
    """One harvest at a time per data folder (a command, a server's schedule, a cron job)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncRunning(f"another sync is running in {path.parent}") from None
        yield


def remove_leftovers(builds_dir: Path) -> None:
    """Remove the staging folders of crashed builds."""
    for leftover in builds_dir.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def staging_dir(builds_dir: Path, build_id: str) -> Path:
    staging = builds_dir / f".tmp-{build_id}"
    staging.mkdir(parents=True)
    return staging


def publish(builds_dir: Path, staging: Path, build_id: str) -> Path:
    """Verify the staged build against its manifest's checksums, make it durable, rename it
    into place, then swap the CURRENT pointer."""
    folder = BuildFolder(staging)
    problems = folder.verify(folder.manifest())
    if problems:
        raise BuildDamaged(f"build {build_id} changed before it was published: {problems}")
    for artifact in staging.rglob("*"):  # the lexical index is a folder of files
        fsync(artifact)
    fsync(staging)
    final = builds_dir / build_id
    staging.rename(final)
    fsync(builds_dir)
    _point_to(builds_dir, build_id)
    return final


def _point_to(builds_dir: Path, build_id: str) -> None:
    """Make ``CURRENT`` name ``build_id``: written beside it, fsynced, renamed over it."""
    pointer_tmp = builds_dir / f".{CURRENT}.tmp"
    pointer_tmp.write_text(build_id, encoding="utf-8")
    with pointer_tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(pointer_tmp, builds_dir / CURRENT)
    fsync(builds_dir)


def prune(builds_dir: Path, keep: str) -> None:
    """Remove leftovers of crashed builds and all but the newest KEEP_BUILDS builds."""
    remove_leftovers(builds_dir)
    for old in published_builds(builds_dir)[:-KEEP_BUILDS]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


# -- choosing the served build (rollback) and copying builds (backups) -------------------------

BUILD_ID = re.compile(r"^[\w-][\w.-]*$")
"""What a build folder's name may be (no path separators, no leading dot)."""


@dataclass(frozen=True)
class BuildSummary:
    """One build folder as ``paperscope builds list`` shows it."""

    id: str
    created_at: str | None
    papers: int | None
    topics: int | None
    bytes: int
    current: bool
    problem: str | None
    """Why it cannot be served (missing files, unreadable manifest); None when it can."""


def _problem(folder: Path, build_id: str | None = None) -> tuple[BuildManifest | None, str | None]:
    """The build's manifest, and why it cannot be served as ``build_id`` (default: the folder's
    name); None when it can."""
    missing = BuildFolder(folder).missing()
    try:
        manifest: BuildManifest | None = read_manifest(folder)
    except (OSError, ValueError) as err:
        manifest = None
        if MANIFEST not in missing:
            return None, f"unreadable {MANIFEST}: {str(err).splitlines()[0]}"
    if missing:
        return manifest, f"incomplete: missing {', '.join(missing)}"
    expected = build_id or folder.name
    if manifest is not None and manifest.build_id != expected:
        return manifest, f"its manifest names build {manifest.build_id}"
    damaged = verify_files(folder, manifest) if manifest is not None else []
    if damaged:
        return manifest, f"damaged: {'; '.join(damaged)}"
    return manifest, None


def list_builds(builds_dir: Path) -> list[BuildSummary]:
    """Every build folder, oldest first, with what its manifest says and whether it is served."""
    current = read_pointer(builds_dir)
    out = []
    for folder in published_builds(builds_dir):
        manifest, problem = _problem(folder)
        out.append(
            BuildSummary(
                id=folder.name,
                created_at=manifest.created_at if manifest else None,
                papers=manifest.papers if manifest else None,
                topics=manifest.n_topics if manifest else None,
                bytes=folder_bytes(folder),
                current=folder.name == current,
                problem=problem,
            )
        )
    return out


def servable_build(builds_dir: Path, build_id: str) -> Path:
    """The folder of build ``build_id``: NotFound if there is none, BuildDamaged if it lacks
    what serving needs."""
    folder = builds_dir / build_id
    if not BUILD_ID.match(build_id) or not folder.is_dir():
        raise NotFound(f"no build {build_id!r} in {builds_dir} (paperscope builds list)")
    _, problem = _problem(folder)
    if problem is not None:
        raise BuildDamaged(f"build {build_id} cannot be served: {problem}")
    return folder


def use_build(builds_dir: Path, build_id: str) -> str | None:
    """Publish an existing build (rollback or forward): swap ``CURRENT`` to it atomically.
    Returns the build published before. Refused while a build is running (it would publish
    over the choice)."""
    servable_build(builds_dir, build_id)
    with build_lock(builds_dir):
        before = read_pointer(builds_dir)
        if before != build_id:
            _point_to(builds_dir, build_id)
    return before


def copy_build(build: Path, target: Path) -> None:
    """Copy a published build folder (its files never change once published)."""
    shutil.copytree(build, target)


def install_build(builds_dir: Path, source: Path, build_id: str) -> None:
    """Copy a build folder (from a backup) into the builds and publish it the way a build is
    published: staged, checked, made durable, renamed, then ``CURRENT`` swapped. A build folder
    of that id already there is replaced (and put back if the new one cannot be published)."""
    with build_lock(builds_dir):
        remove_leftovers(builds_dir)
        staging = builds_dir / f".tmp-{build_id}"
        final, old = builds_dir / build_id, builds_dir / f".tmp-replaced-{build_id}"
        try:
            shutil.copytree(source, staging)
            _, problem = _problem(staging, build_id)
            if problem is not None:
                raise BuildDamaged(f"the build {build_id} to restore cannot be served: {problem}")
            if final.exists():
                final.rename(old)
            publish(builds_dir, staging, build_id)
        except BaseException:
            if old.exists() and not final.exists():
                old.rename(final)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
