"""The query engine: one published build answering search, like-this, topics and the map.

A facade over a :class:`~service.query.view.BuildView`: every method returns
:mod:`service.schemas` objects, so callers (API routes, CLI) never see numpy or faiss.
Recommendations (:mod:`service.query.recommend`) and topic exploration
(:mod:`service.query.explore`) are functions of the view; the engine is their one entry point.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.embed.backends import Embedder
from service.errors import InvalidInput, NotFound
from service.query import explore, recommend
from service.query.map_payload import map_points
from service.query.view import BuildView, LiveBatch, LiveOverlay
from service.schemas import (
    BLANK,
    MAX_K,
    MAX_OFFSET,
    MAX_QUERY_CHARS,
    NO_FILTER,
    BuildManifest,
    DuplicatePair,
    Hit,
    MapPoints,
    PaperFilter,
    PaperOut,
    Recommendation,
    RecommendRequest,
    TopicDetail,
    TopicGroupSummary,
    TopicMatch,
    TopicSummary,
    TopicTimeline,
    TopicTrend,
    derive_title,
)
from service.search.fusion import DEFAULT_FUSION, FusionParams, Mode, Scored, hybrid, parse_mode
from service.search.fusion import top_rows as lexical_top_rows


def query_text(text: str) -> str:
    """Query text without surrounding blanks; InvalidInput when empty or too long."""
    text = text.strip(BLANK)
    if not text:
        raise InvalidInput("query text must not be empty")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInput(f"query text is longer than {MAX_QUERY_CHARS} characters")
    return text


class Engine:
    """Answers queries from one build folder. Thread-safe for concurrent readers."""

    def __init__(self, build_dir: Path, embedder: Embedder | None) -> None:
        self.view = BuildView(build_dir, embedder)
        self._map_lock = threading.Lock()
        self._map_cache: tuple[int, MapPoints, dict[str, bytes]] | None = None

    # -- the build and its state ------------------------------------------------------------

    @property
    def manifest(self) -> BuildManifest:
        return self.view.manifest

    @property
    def build_dir(self) -> Path:
        return self.view.build_dir

    @property
    def embedder(self) -> Embedder | None:
        return self.view.embedder

    @property
    def size(self) -> int:
        """Papers in the build itself (live additions not counted)."""
        return self.view.size

    @property
    def live(self) -> LiveOverlay:
        return self.view.live

    @property
    def version(self) -> int:
        """Moves whenever an answer of this engine may change: papers added or deleted live,
        topics curated. Answers kept with one version are stale at the next."""
        return self.view.version

    @property
    def visible_count(self) -> int:
        """Papers answered now: the build's and live additions, minus hidden ones."""
        return self.view.visible_count

    @property
    def paper_ids(self) -> list[str]:
        """Ids of the build's papers in row order (hidden ones included)."""
        return list(self.view.ids)

    def scan_size(self, filters: PaperFilter) -> int:
        """Rows a query with ``filters`` scores (0 without a filter: the index answers)."""
        allowed = self.view.allowed(filters)
        return 0 if allowed is None else len(allowed)

    def has_paper(self, paper_id: str) -> bool:
        """Whether this paper is answered now (in the build or added live, and not deleted)."""
        try:
            self.view.row_of(paper_id)
        except NotFound:
            return False
        return True

    def hide(self, paper_ids: Iterable[str]) -> int:
        """Stop returning these papers (deleted since the build) at once; returns how many were
        newly hidden."""
        return self.view.hide(paper_ids)

    def add_live(self, batch: LiveBatch) -> None:
        """Serve these papers from now on, placed by :mod:`service.query.live`; a paper already
        served under the same id (in the build or added earlier) is replaced."""
        self.view.add_live(batch)

    # -- papers -----------------------------------------------------------------------------

    def _check_k(self, k: int) -> int:
        if not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be between 1 and {MAX_K}, got {k}")
        return k

    def paper(self, paper_id: str) -> PaperOut:
        view = self.view
        row = view.row_of(paper_id)
        paper = view.papers_at([row])[row]
        topic = view.topic_of(row)
        return PaperOut(
            **paper.model_dump(),
            topic_id=topic,
            topic_label=view.topic_label(topic),
            outlier=view.outlier_of(row),
            confidence=view.confidence_of(row),
            title_derived=paper.title == derive_title(paper.abstract),
        )

    def _check_offset(self, offset: int) -> int:
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidInput(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")
        return offset

    def similar(
        self, paper_id: str, k: int = 10, filters: PaperFilter = NO_FILTER, offset: int = 0
    ) -> list[Hit]:
        """Papers most like ``paper_id`` (the paper itself excluded), among those ``filters``
        lets through, skipping the first ``offset``."""
        want = self._check_k(k) + self._check_offset(offset)
        view = self.view
        row = view.row_of(paper_id)
        allowed = view.allowed(filters)
        if allowed is not None:
            scores, rows = view.nearest(view.vector(row), want + 1, allowed)
            return view.hits(scores[0], rows[0], skip=row, k=want)[offset:]
        listed = view.listed_neighbours(row, want)
        if listed is not None:
            return view.hits(*listed, skip=row, k=want)[offset:]
        scores, rows = view.dense(view.vector(row), view.candidates(want) + 1)
        return view.hits(scores[0], rows[0], skip=row, k=want)[offset:]

    def search(
        self,
        text: str,
        k: int = 10,
        mode: Mode = "hybrid",
        fusion: FusionParams = DEFAULT_FUSION,
        filters: PaperFilter = NO_FILTER,
        offset: int = 0,
    ) -> list[Hit]:
        """Papers matching free text (a question, a title, a pasted abstract): by meaning
        (``dense``), by shared terms (``lexical``, BM25), or both fused (``hybrid``); only
        papers ``filters`` lets through (chosen before ranking), skipping the first ``offset``.
        """
        want = self._check_k(k) + self._check_offset(offset)
        text = query_text(text)
        mode = parse_mode(mode)
        view = self.view
        if mode != "dense" and view.lexical is None:
            if mode == "lexical":
                raise InvalidInput("this build has no lexical index; rebuild: paperscope build")
            mode = "dense"  # an older build: hybrid falls back to what it can do
        allowed = view.allowed(filters)
        if mode == "lexical":
            scores = _only(view.lexical_scores(text), allowed)
            found = lexical_top_rows(scores, want, skip=view.hidden)
            return [
                view.hit(r, float(scores[r]), None, float(scores[r])) for r in found if scores[r]
            ][offset:]
        if view.queries is None:
            raise InvalidInput("this engine was opened without an embedding model")
        query = view.queries.encode([text])
        depth = want if mode == "dense" else max(want, fusion.depth)
        if allowed is None:
            scores, rows = view.dense(query, view.candidates(depth))
        else:
            scores, rows = view.nearest(query, depth, allowed)
        if mode == "dense":
            return view.hits(scores[0], rows[0], skip=-1, k=want)[offset:]
        dense_rows = [int(r) for r in rows[0] if r >= 0]
        lexical = _only(view.lexical_scores(text), allowed)
        fused = hybrid(dense_rows, query[0], _rows_vectors(view), lexical, fusion, view.hidden)
        return [_scored_hit(view, s) for s in fused[offset:want]]

    def recommend(self, request: RecommendRequest) -> list[Recommendation]:
        """Papers like these seeds (see :mod:`service.query.recommend`)."""
        return recommend.recommend(self.view, request)

    # -- topics -----------------------------------------------------------------------------

    def topics(self) -> list[TopicSummary]:
        """All topics, largest first; the unclustered papers (id -1) come last."""
        return explore.topic_summaries(self.view)

    def topic(self, topic_id: int, limit: int = 100) -> TopicDetail:
        return explore.topic_detail(self.view, topic_id, limit)

    def coarse_topics(self) -> list[TopicGroupSummary]:
        return explore.coarse_topics(self.view)

    def timeline(self, topic_id: int) -> TopicTimeline:
        return explore.timeline(self.view, topic_id)

    def trending(self, months: int = 6) -> list[TopicTrend]:
        return explore.trending(self.view, months)

    def find_topics(self, text: str, k: int = 10) -> list[TopicMatch]:
        return explore.find_topics(self.view, text, k)

    def duplicates_of(self, paper_id: str, threshold: float) -> list[Hit]:
        """Served papers at least ``threshold`` similar to this one (live additions included)."""
        return [h for h in self.similar(paper_id, explore.DUPLICATE_DEPTH) if h.score >= threshold]

    def duplicate_report(self, limit: int) -> list[DuplicatePair]:
        return explore.duplicate_report(self.view, limit)

    # -- the map ----------------------------------------------------------------------------

    def map_points(self) -> MapPoints:
        """Everything the map page draws, built once per state of the view."""
        return self._map_entry()[1]

    def map_json(self, compressed: bool) -> bytes:
        """:meth:`map_points` serialised once (and gzip-compressed once): the payload is large
        (about 10 MB for 75k papers) and identical for every request."""
        key = "gzip" if compressed else "json"
        _, points, encoded = self._map_entry()
        with self._map_lock:
            if key not in encoded:
                raw = encoded.get("json") or points.model_dump_json().encode()
                encoded["json"] = raw
                if compressed:
                    encoded["gzip"] = gzip.compress(raw, compresslevel=6, mtime=0)
            return encoded[key]

    def _map_entry(self) -> tuple[int, MapPoints, dict[str, bytes]]:
        with self._map_lock:  # the first requests would otherwise all build it at once
            version = self.view.version
            if self._map_cache is None or self._map_cache[0] != version:
                self._map_cache = (version, map_points(self.view), {})
            return self._map_cache

    def close(self) -> None:
        self.view.close()


def _rows_vectors(view: BuildView) -> Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float32]]:
    def vectors(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        return view.vectors_at(rows.tolist())

    return vectors


def _only(
    scores: npt.NDArray[np.float32], allowed: npt.NDArray[np.int64] | None
) -> npt.NDArray[np.float32]:
    """Lexical scores with every row outside ``allowed`` zeroed (zero = never a result)."""
    if allowed is None:
        return scores
    kept = np.zeros_like(scores)
    kept[allowed] = scores[allowed]
    return kept


def _scored_hit(view: BuildView, scored: Scored) -> Hit:
    return view.hit(scored.row, scored.score, scored.dense, scored.lexical)
