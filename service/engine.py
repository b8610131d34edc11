"""Read-only query engine over one published build: search, like-this, topics, map.

Artifacts are opened read-only and the embedding matrix memory-mapped. Every method returns
:mod:`service.schemas` objects, so callers (API routes, CLI) never see numpy or faiss.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.build import read_manifest
from service.embed import Embedder
from service.errors import ArtifactMismatch, BuildDamaged, InvalidInput, NotFound
from service.index import load_index, reranks, search
from service.lexical import LEXICAL_DIR, LexicalIndex
from service.neighbours import load_lists
from service.retrieval import (
    DEFAULT_FUSION,
    FusionParams,
    Mode,
    Scored,
    hybrid,
    parse_mode,
    top_rows,
)
from service.schemas import (
    MAX_K,
    NOISE_TOPIC,
    BuildManifest,
    Hit,
    MapGroup,
    MapPoints,
    MapTopic,
    Paper,
    PaperOut,
    PaperRef,
    TopicDetail,
    TopicLink,
    TopicSummary,
)
from service.store import row_to_paper
from service.topics import REPRESENTATIVES

MAX_QUERY_CHARS = 10_000
BLANK = " \t\n\r\f\v"
"""What counts as blank in a query: ASCII whitespace, the same set the API's pattern excludes."""
NOT_BLANK_PATTERN = "[^ \t\n\r\f\v]"
"""The API's pattern for query text: at least one character outside :data:`BLANK`."""
ARTIFACTS = (
    "manifest.json",
    "embeddings.npy",
    "index.faiss",
    "papers.sqlite",
    "topics.json",
    "assignments.npy",
    "map.npy",
)


@dataclass(frozen=True)
class _Topic:
    id: int
    label: str
    keywords: list[str]
    members: list[int]
    parents: list[TopicLink]


@dataclass(frozen=True)
class LiveOverlay:
    """Papers added to this build while it is served (see :mod:`service.live`).

    Their rows come after the build's own (row ``size + j`` is ``papers[j]``). The overlay only
    grows, and is replaced whole on each addition, so a row number means the same paper for the
    engine's lifetime; a deleted or re-posted paper's old row is hidden, not removed.
    """

    papers: tuple[Paper, ...]
    vectors: npt.NDArray[np.float32]
    topics: npt.NDArray[np.int32]
    coords: npt.NDArray[np.float32]
    added_at: tuple[str, ...]
    row_of: dict[str, int]
    """Paper id -> its newest overlay position ``j``."""

    @classmethod
    def empty(cls, dim: int) -> LiveOverlay:
        return cls(
            (),
            np.zeros((0, dim), dtype=np.float32),
            np.zeros(0, dtype=np.int32),
            np.zeros((0, 2), dtype=np.float32),
            (),
            {},
        )

    def extend(
        self,
        papers: list[Paper],
        vectors: npt.NDArray[np.float32],
        topics: npt.NDArray[np.int32],
        coords: npt.NDArray[np.float32],
        added_at: list[str],
    ) -> LiveOverlay:
        start = len(self.papers)
        return LiveOverlay(
            (*self.papers, *papers),
            np.vstack([self.vectors, vectors]).astype(np.float32),
            np.concatenate([self.topics, topics]).astype(np.int32),
            np.vstack([self.coords, coords]).astype(np.float32),
            (*self.added_at, *added_at),
            {**self.row_of, **{p.id: start + j for j, p in enumerate(papers)}},
        )


class Engine:
    """Answers queries from one build folder. Thread-safe for concurrent readers."""

    def __init__(self, build_dir: Path, embedder: Embedder | None) -> None:
        missing = [name for name in ARTIFACTS if not (build_dir / name).is_file()]
        if missing:
            raise BuildDamaged(f"build {build_dir.name} is incomplete: missing {missing}")
        try:
            self.manifest: BuildManifest = read_manifest(build_dir)
        except ValueError as err:
            raise BuildDamaged(
                f"build {build_dir.name} has an unreadable manifest: {err}"
            ) from None
        if embedder is not None:
            _check_model(self.manifest, embedder)
        self.build_dir = build_dir
        self.embedder = embedder
        try:
            self._load(build_dir)
        except (OSError, ValueError, KeyError, RuntimeError, sqlite3.Error) as err:
            raise BuildDamaged(f"build {build_dir.name} is damaged: {err}") from None

    def _load(self, build_dir: Path) -> None:
        self._vectors: npt.NDArray[np.float32] = np.load(
            build_dir / "embeddings.npy", mmap_mode="r"
        )
        self._index = load_index(build_dir / "index.faiss", self.manifest.index)
        self._lists = load_lists(build_dir)
        lexical_dir = build_dir / LEXICAL_DIR  # builds made before lexical search have none
        self._lexical = LexicalIndex.load(lexical_dir) if lexical_dir.is_dir() else None
        self._assignments = np.load(build_dir / "assignments.npy")
        self._map = np.load(build_dir / "map.npy")
        raw = json.loads((build_dir / "topics.json").read_text(encoding="utf-8"))
        self._groups: list[dict[str, Any]] = raw.get("groups", [])
        self._map_cache: MapPoints | None = None
        self._map_bytes: dict[str, bytes] = {}
        self._previous_build: str | None = raw.get("previous_build")
        self._topics = {
            t["id"]: _Topic(
                t["id"],
                t["label"],
                t["keywords"],
                t["members"],
                [TopicLink(**p) for p in t.get("parents", [])],
            )
            for t in raw["topics"]
        }
        self._db = sqlite3.connect(
            f"file:{build_dir / 'papers.sqlite'}?mode=ro", uri=True, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._map_lock = threading.Lock()
        self._hidden: frozenset[int] = frozenset()
        self._live = LiveOverlay.empty(int(self._vectors.shape[1]))
        # What a result shows is held in memory: answering needs no database read.
        rows = self._db.execute(
            "SELECT id, title, date, categories FROM papers ORDER BY row"
        ).fetchall()
        self._ids = [r["id"] for r in rows]
        self._titles = [r["title"] for r in rows]
        self._dates: list[str | None] = [r["date"] for r in rows]
        self._categories: list[list[str]] = [json.loads(r["categories"]) for r in rows]
        self._row_of = {paper_id: row for row, paper_id in enumerate(self._ids)}
        counts = {
            len(self._ids),
            len(self._vectors),
            self._index.ntotal,
            len(self._map),
            len(self._assignments),
            self.manifest.papers,
        }
        if self._lexical is not None:
            counts.add(self._lexical.size)
        if len(counts) != 1:
            raise BuildDamaged(f"build {build_dir.name} is inconsistent: row counts {counts}")

    # -- helpers ----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Papers in the build itself (live additions not counted)."""
        return len(self._ids)

    @property
    def live(self) -> LiveOverlay:
        return self._live

    @property
    def visible_count(self) -> int:
        """Papers answered now: the build's and live additions, minus hidden ones."""
        return len(self._ids) + len(self._live.papers) - len(self._hidden)

    @property
    def paper_ids(self) -> list[str]:
        """Ids of the build's papers in row order (hidden ones included)."""
        return list(self._ids)

    def _label(self, topic_id: int) -> str:
        topic = self._topics.get(topic_id)
        return topic.label if topic else "unclustered"

    def _row(self, paper_id: str) -> int:
        live = self._live.row_of.get(paper_id)
        row = self.size + live if live is not None else self._row_of.get(paper_id)
        if row is None or row in self._hidden:
            raise NotFound(f"no paper with id {paper_id!r}")
        return row

    def has_paper(self, paper_id: str) -> bool:
        """Whether this paper is answered now (in the build or added live, and not deleted)."""
        try:
            self._row(paper_id)
        except NotFound:
            return False
        return True

    def hide(self, paper_ids: Iterable[str]) -> int:
        """Stop returning these papers (deleted since the build) at once; returns how many were
        newly hidden.

        The hidden set is replaced, never mutated, so concurrent readers see old or new whole.
        """
        with self._map_lock:
            rows = self._rows_of(paper_ids) - self._hidden
            if rows:
                self._hidden = frozenset(self._hidden | rows)
                self._map_cache, self._map_bytes = None, {}
        return len(rows)

    def _rows_of(self, paper_ids: Iterable[str]) -> set[int]:
        """Every row (build and overlay) holding one of these ids."""
        wanted = set(paper_ids)
        rows = {self._row_of[i] for i in wanted if i in self._row_of}
        rows |= {self.size + j for j, p in enumerate(self._live.papers) if p.id in wanted}
        return rows

    def add_live(
        self,
        papers: list[Paper],
        vectors: npt.NDArray[np.float32],
        topics: npt.NDArray[np.int32],
        coords: npt.NDArray[np.float32],
        added_at: list[str],
    ) -> None:
        """Serve these papers from now on, placed by :mod:`service.live`; a paper already
        served under the same id (in the build or added earlier) is replaced."""
        if not papers:
            return
        with self._map_lock:
            replaced = self._rows_of(p.id for p in papers)
            self._live = self._live.extend(papers, vectors, topics, coords, added_at)
            self._hidden = frozenset(self._hidden | replaced)
            self._map_cache, self._map_bytes = None, {}

    def _topic_of(self, row: int) -> int:
        if row < self.size:
            return int(self._assignments[row])
        return int(self._live.topics[row - self.size])

    def _vector(self, row: int) -> npt.NDArray[np.float32]:
        if row < self.size:
            return np.asarray(self._vectors[row : row + 1], dtype=np.float32)
        return self._live.vectors[row - self.size : row - self.size + 1]

    def _dense(
        self, queries: npt.NDArray[np.float32], n: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The n nearest rows to each query: the build's index, merged with an exact scan of
        the live additions (few, so brute force is fast and exact). A product-quantised
        index's candidates are rescored from the memory-mapped vectors."""
        stored = self._vectors if reranks(self.manifest.index) else None
        scores, rows = search(self._index, queries, n, stored)
        live = self._live
        if not live.papers:
            return scores, rows
        live_scores = queries @ live.vectors.T
        live_rows = np.arange(len(live.papers), dtype=np.int64) + self.size
        all_scores = np.hstack([scores, live_scores])
        all_rows = np.hstack([rows, np.broadcast_to(live_rows, live_scores.shape)])
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, :n]
        return (
            np.take_along_axis(all_scores, order, axis=1).astype(np.float32),
            np.take_along_axis(all_rows, order, axis=1),
        )

    # -- building blocks for other query modules (service.recommend) ------------------------

    def row_of(self, paper_id: str) -> int:
        """The row serving this paper (404 if it is not served)."""
        return self._row(paper_id)

    def topic_of(self, row: int) -> int:
        return self._topic_of(row)

    def topic_rows(self, topic_id: int) -> list[int]:
        """Visible rows of a topic, build members (centre first) then live additions."""
        topic = self._topics.get(topic_id)
        if topic is None:
            raise NotFound(f"no topic with id {topic_id}")
        return self._members(topic)

    def build_topic_rows(self) -> dict[int, list[int]]:
        """Every topic's build members (as fitted, hidden ones included)."""
        return {t.id: t.members for t in self._topics.values()}

    @property
    def groups(self) -> list[dict[str, Any]]:
        """The coarse topic level: ``id``, ``label``, ``keywords``, ``children`` (topic ids)."""
        return self._groups

    def dates(self) -> list[str | None]:
        """Dates of every row, build and live."""
        return self._dates + [p.date for p in self._live.papers]

    def refs(self, rows: list[int]) -> list[PaperRef]:
        return self._refs(rows)

    def term_idf(self, words: list[str]) -> dict[str, float] | None:
        """Corpus-wide IDF of these words from the BM25 index (None for builds without one)."""
        return self._lexical.idf(words) if self._lexical is not None else None

    def visible(self, rows: list[int]) -> list[int]:
        """These rows without hidden (deleted or replaced) ones."""
        return self._visible(rows)

    def topic_label(self, topic_id: int) -> str:
        return self._label(topic_id)

    def vectors_at(self, rows: list[int]) -> npt.NDArray[np.float32]:
        """Embeddings of these rows (build or live), in order."""
        at = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(at), self._vectors.shape[1]), dtype=np.float32)
        built = at < self.size
        out[built] = self._vectors[at[built]]
        out[~built] = self._live.vectors[at[~built] - self.size]
        return out

    def papers_at(self, rows: list[int]) -> dict[int, Paper]:
        return self._fetch(rows)

    def hits_at(self, rows: list[int], scores: list[float]) -> list[Hit]:
        """Hits for these rows in this order (hidden rows dropped)."""
        return self._hits(np.asarray(scores), np.asarray(rows), skip=-1, k=len(rows))

    def filter_rows(
        self,
        since: str | None = None,
        until: str | None = None,
        categories: Iterable[str] = (),
        topics: Iterable[int] = (),
    ) -> npt.NDArray[np.int64] | None:
        """Visible rows matching every given filter (None when no filter is given).

        A category matches itself and, given without a dot (``cs``), every ``cs.*``; papers
        without a date never match a date range.
        """
        wanted_categories, wanted_topics = set(categories), set(topics)
        if since is None and until is None and not wanted_categories and not wanted_topics:
            return None
        dates, paper_categories = self._dates, self._categories
        live = self._live
        dates = dates + [p.date for p in live.papers]
        paper_categories = paper_categories + [p.categories for p in live.papers]

        def matches(row: int) -> bool:
            if row in self._hidden:
                return False
            day = dates[row]
            if (since or until) and day is None:
                return False
            if since and day is not None and day < since:
                return False
            if until and day is not None and day > until:
                return False
            if wanted_topics and self._topic_of(row) not in wanted_topics:
                return False
            return not wanted_categories or any(
                c in wanted_categories or c.split(".")[0] in wanted_categories
                for c in paper_categories[row]
            )

        return np.array([r for r in range(len(dates)) if matches(r)], dtype=np.int64)

    def nearest(
        self, queries: npt.NDArray[np.float32], n: int, rows: npt.NDArray[np.int64] | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The n nearest rows to each query, among ``rows`` when given (an exact scan of just
        those rows, so a filter never truncates the results) else among all."""
        if rows is None:
            return self._dense(queries, n)
        n = max(1, min(n, len(rows)))
        if not len(rows):
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        scores = np.empty((len(queries), len(rows)), dtype=np.float32)
        for start in range(0, len(rows), 8192):
            block = rows[start : start + 8192].tolist()
            scores[:, start : start + len(block)] = queries @ self.vectors_at(block).T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :n]
        return np.take_along_axis(scores, order, axis=1), rows[order]

    def _visible(self, rows: list[int]) -> list[int]:
        hidden = self._hidden
        return [r for r in rows if r not in hidden] if hidden else rows

    def _candidates(self, k: int) -> int:
        """How many neighbours to ask the index for so that k survive hidden papers."""
        return k + min(len(self._hidden), 1000)

    def _check_k(self, k: int) -> int:
        if not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be between 1 and {MAX_K}, got {k}")
        return k

    def _hits(
        self, scores: npt.NDArray[Any], rows: npt.NDArray[Any], skip: int, k: int
    ) -> list[Hit]:
        hidden = self._hidden
        kept = [
            (score, row)
            for score, row in zip(scores.tolist(), rows.tolist(), strict=True)
            if row >= 0 and row != skip and row not in hidden
        ][:k]
        return [self._hit(row, score, dense=score) for score, row in kept]

    def _hit(
        self, row: int, score: float, dense: float | None = None, lexical: float | None = None
    ) -> Hit:
        """A result from what the engine holds in memory (no database read: like-this answers
        in well under a millisecond)."""
        if row < self.size:
            paper_id, title, date, cats = (
                self._ids[row],
                self._titles[row],
                self._dates[row],
                self._categories[row],
            )
        else:
            live = self._live.papers[row - self.size]
            paper_id, title, date, cats = live.id, live.title, live.date, live.categories
        topic = self._topic_of(row)
        return Hit(
            id=paper_id,
            title=title,
            score=round(score, 6),
            dense_score=None if dense is None else round(dense, 6),
            lexical_score=None if lexical is None else round(lexical, 6),
            date=date,
            categories=list(cats),
            topic_id=topic,
            topic_label=self._label(topic),
        )

    def _fetch(self, rows: list[int]) -> dict[int, Paper]:
        """The papers at these rows (build rows read from its database, live ones from memory)."""
        live = self._live
        found = {r: live.papers[r - self.size] for r in rows if r >= self.size}
        built = [r for r in rows if r < self.size]
        if built:
            marks = ",".join("?" * len(built))
            with self._lock:
                sql = f"SELECT * FROM papers WHERE row IN ({marks})"  # noqa: S608 - marks are '?'
                records = self._db.execute(sql, built).fetchall()
            found.update({r["row"]: row_to_paper(r) for r in records})
        return found

    # -- queries ----------------------------------------------------------------------------

    def paper(self, paper_id: str) -> PaperOut:
        row = self._row(paper_id)
        paper = self._fetch([row])[row]
        topic = self._topic_of(row)
        return PaperOut(**paper.model_dump(), topic_id=topic, topic_label=self._label(topic))

    def similar(self, paper_id: str, k: int = 10) -> list[Hit]:
        """Papers most like ``paper_id`` (the paper itself excluded)."""
        k = self._check_k(k)
        row = self._row(paper_id)
        listed = self._listed_neighbours(row, k)
        if listed is not None:
            return self._hits(*listed, skip=row, k=k)
        scores, rows = self._dense(self._vector(row), self._candidates(k) + 1)
        return self._hits(scores[0], rows[0], skip=row, k=k)

    def _listed_neighbours(
        self, row: int, k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None:
        """A build paper's precomputed neighbours (see :mod:`service.neighbours`) merged with
        the live additions; None when there is no list or too few of it are still served."""
        if self._lists is None or row >= self.size:
            return None
        rows, scores = self._lists[0][row], self._lists[1][row]
        hidden = self._hidden
        served = sum(1 for r in rows.tolist() if r >= 0 and r != row and r not in hidden)
        if served < k:
            return None
        live = self._live
        if not live.papers:
            return scores, rows
        live_scores = live.vectors @ self._vector(row)[0]
        all_scores = np.concatenate([scores, live_scores])
        all_rows = np.concatenate([rows, np.arange(len(live.papers)) + self.size])
        order = np.argsort(-all_scores, kind="stable")
        return all_scores[order], all_rows[order]

    def search(
        self,
        text: str,
        k: int = 10,
        mode: Mode = "hybrid",
        fusion: FusionParams = DEFAULT_FUSION,
    ) -> list[Hit]:
        """Papers matching free text (a question, a title, a pasted abstract): by meaning
        (``dense``), by shared terms (``lexical``, BM25), or both fused (``hybrid``)."""
        k = self._check_k(k)
        text = text.strip(BLANK)
        if not text:
            raise InvalidInput("query text must not be empty")
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidInput(f"query text is longer than {MAX_QUERY_CHARS} characters")
        mode = parse_mode(mode)
        if mode != "dense" and self._lexical is None:
            if mode == "lexical":
                raise InvalidInput("this build has no lexical index; rebuild: paperscope build")
            mode = "dense"  # an older build: hybrid falls back to what it can do
        if mode == "lexical":
            scores = self._lexical_scores(text)
            found = top_rows(scores, k, skip=self._hidden)
            return self._scored_hits(
                [Scored(r, float(scores[r]), None, float(scores[r])) for r in found if scores[r]]
            )
        if self.embedder is None:
            raise InvalidInput("this engine was opened without an embedding model")
        query = self.embedder.encode([text])
        depth = k if mode == "dense" else max(k, fusion.depth)
        scores, rows = self._dense(query, self._candidates(depth))
        if mode == "dense":
            return self._hits(scores[0], rows[0], skip=-1, k=k)
        dense_rows = [int(r) for r in rows[0] if r >= 0]
        lexical = self._lexical_scores(text)
        fused = hybrid(dense_rows, query[0], self._rows_vectors, lexical, fusion, self._hidden)
        return self._scored_hits(fused[:k])

    def _lexical_scores(self, text: str) -> npt.NDArray[np.float32]:
        """BM25 of every row; live additions, not in the index until the next build, are
        scored on the index's statistics."""
        assert self._lexical is not None
        scores = self._lexical.scores(text)
        live = self._live.papers
        if live:
            extra = self._lexical.score_documents(text, [(p.title, p.abstract) for p in live])
            scores = np.concatenate([scores, extra.astype(scores.dtype)])
        return np.asarray(scores, dtype=np.float32)

    def _rows_vectors(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        return self.vectors_at(rows.tolist())

    def _scored_hits(self, scored: list[Scored]) -> list[Hit]:
        return [self._hit(s.row, s.score, s.dense, s.lexical) for s in scored]

    def _members(self, topic: _Topic) -> list[int]:
        """Visible rows of a topic: the build's (centre first), then live additions."""
        live = [self.size + j for j in np.flatnonzero(self._live.topics == topic.id).tolist()]
        return self._visible(topic.members + live)

    def _summary(self, topic: _Topic) -> TopicSummary:
        members = self._members(topic)
        return TopicSummary(
            id=topic.id,
            label=topic.label,
            keywords=topic.keywords,
            size=len(members),
            representative=self._refs(members[:REPRESENTATIVES]),
        )

    def _refs(self, rows: list[int]) -> list[PaperRef]:
        live = self._live.papers
        return [
            PaperRef(id=self._ids[r], title=self._titles[r])
            if r < self.size
            else PaperRef(id=live[r - self.size].id, title=live[r - self.size].title)
            for r in rows
        ]

    def topics(self) -> list[TopicSummary]:
        """All topics, largest first; the unclustered papers (id -1) come last."""
        ordered = sorted(
            self._topics.values(), key=lambda t: (t.id == NOISE_TOPIC, -len(t.members), t.id)
        )
        return [summary for summary in map(self._summary, ordered) if summary.size]

    def topic(self, topic_id: int, limit: int = 100) -> TopicDetail:
        topic = self._topics.get(topic_id)
        if topic is None:
            raise NotFound(f"no topic with id {topic_id}")
        if limit < 1:
            raise InvalidInput("limit must be at least 1")
        summary = self._summary(topic)
        children = [
            TopicLink(id=other.id, shared=link.shared)
            for other in self._topics.values()
            for link in other.parents
            if link.id == topic_id and other.id != topic_id
        ]
        return TopicDetail(
            **summary.model_dump(),
            papers=self._refs(self._members(topic)[:limit]),
            previous_build=self._previous_build,
            parents=topic.parents,
            children=children,
        )

    def map_points(self) -> MapPoints:
        """Everything the map page draws, built once per engine (the build is immutable)."""
        with self._map_lock:  # the first requests would otherwise all build it at once
            if self._map_cache is None:
                self._map_cache = self._build_map_points()
            return self._map_cache

    def map_json(self, compressed: bool) -> bytes:
        """:meth:`map_points` serialised once (and gzip-compressed once): the payload is large
        (about 10 MB for 75k papers) and identical for every request."""
        key = "gzip" if compressed else "json"
        points = self.map_points()
        with self._map_lock:
            if key not in self._map_bytes:
                raw = self._map_bytes.get("json") or points.model_dump_json().encode()
                self._map_bytes["json"] = raw
                if compressed:
                    self._map_bytes["gzip"] = gzip.compress(raw, compresslevel=6, mtime=0)
            return self._map_bytes[key]

    def _build_map_points(self) -> MapPoints:
        with self._lock:
            rows = self._db.execute("SELECT date, categories FROM papers ORDER BY row").fetchall()
        live = self._live
        dates = [r["date"] for r in rows] + [p.date for p in live.papers]
        categories = [json.loads(r["categories"]) for r in rows]
        categories += [p.categories for p in live.papers]
        firsts: list[str | None] = [c[0] if c else None for c in categories]
        ids = self._ids + [p.id for p in live.papers]
        titles = self._titles + [p.title for p in live.papers]
        coords = np.vstack([self._map, live.coords]) if live.papers else self._map
        assignments = np.concatenate([self._assignments, live.topics])
        keep = self._visible(list(range(len(ids))))
        primary = [firsts[r] for r in keep]
        names = sorted({c for c in primary if c})
        index_of = {name: i for i, name in enumerate(names)}
        group_of = {child: g["id"] for g in self._groups for child in g["children"]}
        members_of = {t.id: self._members(t) for t in self._topics.values()}

        def centre(members: list[int]) -> tuple[float, float]:
            median = np.median(coords[members], axis=0)
            return round(float(median[0]), 5), round(float(median[1]), 5)

        topics = []
        for topic in self._topics.values():
            visible = members_of[topic.id]
            if not visible:
                continue
            x, y = centre(visible)
            topics.append(
                MapTopic(
                    id=topic.id,
                    label=topic.label,
                    keywords=topic.keywords,
                    size=len(visible),
                    x=x,
                    y=y,
                    group=group_of.get(topic.id),
                )
            )
        groups = []
        for group in self._groups:
            members = [m for c in group["children"] for m in members_of[c]]
            if not members:
                continue
            x, y = centre(members)
            groups.append(
                MapGroup(
                    id=group["id"],
                    label=group["label"],
                    keywords=group["keywords"],
                    size=len(members),
                    x=x,
                    y=y,
                    children=group["children"],
                )
            )
        return MapPoints(
            ids=[ids[r] for r in keep],
            x=[round(float(v), 5) for v in coords[keep, 0]],
            y=[round(float(v), 5) for v in coords[keep, 1]],
            topic=[int(t) for t in assignments[keep]],
            title=[titles[r] for r in keep],
            date=[dates[r] for r in keep],
            category=[index_of[c] if c else -1 for c in primary],
            categories=names,
            topics=sorted(topics, key=lambda t: t.id),
            groups=groups,
        )

    def all_neighbours(self, k: int) -> list[list[tuple[int, float]]]:
        """For every paper, its k nearest other papers as (row, score), in batches."""
        neighbours: list[list[tuple[int, float]]] = []
        for start in range(0, self.size, 4096):
            block = np.asarray(self._vectors[start : start + 4096], dtype=np.float32)
            stored = self._vectors if reranks(self.manifest.index) else None
            scores, rows = search(self._index, block, k + 1, stored)
            for offset, (row_scores, row_ids) in enumerate(zip(scores, rows, strict=True)):
                own = start + offset
                neighbours.append(
                    [
                        (int(r), round(float(s), 4))
                        for s, r in zip(row_scores, row_ids, strict=True)
                        if r >= 0 and r != own
                    ][:k]
                )
        return neighbours

    def all_abstracts(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT abstract FROM papers ORDER BY row").fetchall()
        return [r["abstract"] for r in rows]

    def close(self) -> None:
        self._db.close()


def _check_model(manifest: BuildManifest, embedder: Embedder) -> None:
    built = manifest.model
    if built.dim != embedder.dim or built.revision != embedder.revision:
        raise ArtifactMismatch(
            f"build {manifest.build_id} was made with model {built.name} (dim {built.dim}, "
            f"revision {built.revision[:12]}) but the configured model is {embedder.name} "
            f"(dim {embedder.dim}, revision {embedder.revision[:12]}); "
            "rebuild with: paperscope build --force, or set PAPERSCOPE_MODEL to the build's model"
        )
