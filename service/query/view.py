"""One published build, opened for reading, at the level of rows and vectors.

Row ``r < size`` is the build's own paper ``r``; rows from ``size`` on are papers added live
(:class:`LiveOverlay`). Deleted or replaced papers are hidden, never removed, so a row number
means the same paper for the view's lifetime. The view loads everything through
:mod:`service.artifacts` and memory-maps the embedding matrix. It is what the query modules
(:mod:`service.query.engine`, ``recommend``, ``explore``, ``map_payload``) compute with;
it returns rows, scores and :mod:`service.schemas` records, never raw artifacts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.artifacts import UNREADABLE, BuildFolder, GroupEntry, TopicEntry
from service.embed.backends import Embedder
from service.embed.recent import RecentTexts
from service.errors import ArtifactMismatch, BuildDamaged, NotFound
from service.query.row_filter import GatheredVectors, LazyRowIndex, matches
from service.schemas import BuildManifest, Hit, Paper, PaperFilter, PaperRef
from service.search.index import reranks, search
from service.topics.curation import NO_CURATION, Curation
from service.topics.model import NOISE_LABEL, confidence_or_sure, outliers_or_noise

_DAMAGED: tuple[type[Exception], ...] = (*UNREADABLE, RuntimeError)
"""What loading a damaged build raises (RuntimeError: FAISS reading a bad index)."""


@dataclass(frozen=True)
class LiveBatch:
    """Papers to serve at once, as placed (see :mod:`service.query.live`): row ``i`` of each
    array is ``papers[i]``. Without outlier flags or confidences, the noise topic's papers are
    the outliers and the rest are sure."""

    papers: list[Paper]
    vectors: npt.NDArray[np.float32]
    topics: npt.NDArray[np.int32]
    coords: npt.NDArray[np.float32]
    added_at: list[str]
    outliers: npt.NDArray[np.bool_] | None = None
    confidence: npt.NDArray[np.float32] | None = None


@dataclass(frozen=True)
class LiveOverlay:
    """Papers added to this build while it is served (see :mod:`service.query.live`).

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
    outliers: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    confidence: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros(0, dtype=np.float32)
    )
    placed: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    """Each paper's topic as placed; ``topics`` is the one served (curated, see
    :mod:`service.query.curation`)."""

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

    def extend(self, batch: LiveBatch, served: npt.NDArray[np.int32] | None = None) -> LiveOverlay:
        """With ``batch`` added; ``served``: their topics as served (default: as placed)."""
        start = len(self.papers)
        outliers = outliers_or_noise(batch.topics, batch.outliers)
        confidence = confidence_or_sure(batch.topics, batch.confidence)
        return LiveOverlay(
            (*self.papers, *batch.papers),
            np.vstack([self.vectors, batch.vectors]).astype(np.float32),
            np.concatenate([self.topics, batch.topics if served is None else served]).astype(
                np.int32
            ),
            np.vstack([self.coords, batch.coords]).astype(np.float32),
            (*self.added_at, *batch.added_at),
            {**self.row_of, **{p.id: start + j for j, p in enumerate(batch.papers)}},
            np.concatenate([self.outliers, outliers]).astype(np.bool_),
            np.concatenate([self.confidence, confidence]).astype(np.float32),
            np.concatenate([self.placed, batch.topics]).astype(np.int32),
        )


@dataclass(frozen=True)
class FittedTopics:
    """Topic state of a view: as the build made it, or as served after curation."""

    assignments: npt.NDArray[np.int32]
    outliers: npt.NDArray[np.bool_]
    confidence: npt.NDArray[np.float32]
    topics: dict[int, TopicEntry]
    groups: list[GroupEntry]


@dataclass(frozen=True)
class Curated(FittedTopics):
    """Topic state after curation, with the live additions' topics and the edits it applies."""

    live_topics: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    curation: Curation = NO_CURATION


class BuildView:
    """Rows, vectors and topics of one build plus its live additions. Thread-safe for readers;
    :meth:`hide` and :meth:`add_live` replace state whole, so readers see old or new."""

    def __init__(self, build_dir: Path, embedder: Embedder | None) -> None:
        folder = BuildFolder(build_dir)
        missing = folder.missing()
        if missing:
            raise BuildDamaged(f"build {build_dir.name} is incomplete: missing {missing}")
        try:
            self.manifest: BuildManifest = folder.manifest()
        except ValueError as err:
            raise BuildDamaged(
                f"build {build_dir.name} has an unreadable manifest: {err}"
            ) from None
        if embedder is not None:
            _check_model(self.manifest, embedder)
        problems = folder.verify(self.manifest)  # once per load: files are memory-mapped after
        if problems:
            raise BuildDamaged(f"build {build_dir.name} is damaged: {'; '.join(problems)}")
        self.unverified = (
            None
            if self.manifest.checksums
            else f"build {build_dir.name} was made before builds recorded checksums: not verified"
        )
        """Set for a build whose files could not be verified (say so where it is served)."""
        self.build_dir = build_dir
        self.embedder = embedder
        self.queries = RecentTexts(embedder) if embedder is not None else None
        """Query texts' vectors, the recent ones kept (:mod:`service.embed.recent`)."""
        self.changed = threading.Lock()
        """Held while hidden rows or live additions change."""
        self.version = 0
        """Grows with every change of hidden rows or live additions (caches key on it)."""
        try:
            self._load(folder)
        except _DAMAGED as err:
            raise BuildDamaged(f"build {build_dir.name} is damaged: {err}") from None

    def _load(self, folder: BuildFolder) -> None:
        self.vectors: npt.NDArray[np.float32] = folder.embeddings()
        self.index = folder.index(self.manifest)
        self.lists = folder.neighbour_lists()
        self.lexical = folder.lexical()
        self.assignments = folder.assignments()
        outliers, confidence = folder.outliers(), folder.confidence()
        self.outliers = outliers_or_noise(self.assignments, outliers)
        self.confidence = confidence_or_sure(self.assignments, confidence)
        self.coords = folder.map_coords()
        topics = folder.topics()
        self.groups: list[GroupEntry] = topics.groups
        self.previous_build = topics.previous_build
        self.topics: dict[int, TopicEntry] = {t.id: t for t in topics.topics}
        self.fitted = FittedTopics(
            self.assignments, self.outliers, self.confidence, self.topics, self.groups
        )
        """The topics as the build made them; the attributes above are as served (curated)."""
        self.curation: Curation = NO_CURATION
        self.user_named: frozenset[int] = frozenset()
        """Topics whose name a user gave."""
        self.duplicate_pairs = folder.duplicates()
        self.papers = folder.papers()
        self.hidden: frozenset[int] = frozenset()
        self.live = LiveOverlay.empty(int(self.vectors.shape[1]))
        # What a result shows is held in memory: answering needs no database read.
        shown = self.papers.summaries()
        self.ids, self.titles = shown.ids, shown.titles
        self.dates, self.categories = shown.dates, shown.categories
        self._row_of = {paper_id: row for row, paper_id in enumerate(self.ids)}
        self.row_index = LazyRowIndex(self.dates, self.categories)
        self.gathered = GatheredVectors()
        self._allowed: dict[AllowedKey, npt.NDArray[np.int64]] = {}
        """Rows of recent filters (and the papers' state, ``version``, they were made in)."""
        self._allowed_lock = threading.Lock()
        counts = {
            len(self.ids),
            len(self.vectors),
            self.index.ntotal,
            len(self.coords),
            len(self.assignments),
            len(self.outliers),
            len(self.confidence),
            self.manifest.papers,
        }
        if self.lexical is not None:
            counts.add(self.lexical.size)
        if len(counts) != 1:
            raise BuildDamaged(f"build {folder.name} is inconsistent: row counts {counts}")

    # -- rows -------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Papers in the build itself (live additions not counted)."""
        return len(self.ids)

    @property
    def visible_count(self) -> int:
        """Papers answered now: the build's and live additions, minus hidden ones."""
        return len(self.ids) + len(self.live.papers) - len(self.hidden)

    def row_of(self, paper_id: str) -> int:
        """The row serving this paper (NotFound if it is not served)."""
        live = self.live.row_of.get(paper_id)
        row = self.size + live if live is not None else self._row_of.get(paper_id)
        if row is None or row in self.hidden:
            raise NotFound(f"no paper with id {paper_id!r}")
        return row

    def rows_of(self, paper_ids: Iterable[str]) -> set[int]:
        """Every row (build and overlay) holding one of these ids, hidden ones included."""
        wanted = set(paper_ids)
        rows = {self._row_of[i] for i in wanted if i in self._row_of}
        rows |= {self.size + j for j, p in enumerate(self.live.papers) if p.id in wanted}
        return rows

    def visible(self, rows: list[int]) -> list[int]:
        """These rows without hidden (deleted or replaced) ones."""
        hidden = self.hidden
        return [r for r in rows if r not in hidden] if hidden else rows

    def hide(self, paper_ids: Iterable[str]) -> int:
        """Stop returning these papers; returns how many were newly hidden."""
        with self.changed:
            rows = self.rows_of(paper_ids) - self.hidden
            if rows:
                self.hidden = frozenset(self.hidden | rows)
                self.version += 1
        return len(rows)

    def add_live(self, batch: LiveBatch) -> None:
        """Serve these papers from now on; one already served under the same id is replaced."""
        if not batch.papers:
            return
        with self.changed:
            replaced = self.rows_of(p.id for p in batch.papers)
            served = [
                self.curation.topic_for(p.id, int(t))
                for p, t in zip(batch.papers, batch.topics, strict=True)
            ]
            self.live = self.live.extend(batch, np.array(served, dtype=np.int32))
            self.hidden = frozenset(self.hidden | replaced)
            self.version += 1

    def set_curated(self, curated: Curated) -> None:
        """Serve topics as curated (:mod:`service.query.curation`); call holding ``changed``."""
        self.curation = curated.curation
        self.assignments, self.outliers = curated.assignments, curated.outliers
        self.confidence, self.topics, self.groups = (
            curated.confidence,
            curated.topics,
            curated.groups,
        )
        self.live = replace(self.live, topics=curated.live_topics)
        self.user_named = frozenset(curated.curation.names)
        self.version += 1

    def build_row(self, paper_id: str) -> int | None:
        """The build's own row of this paper, hidden or not (None if the build lacks it)."""
        return self._row_of.get(paper_id)

    def all_dates(self) -> list[str | None]:
        """Dates of every row, build and live."""
        return self.dates + [p.date for p in self.live.papers]

    def all_categories(self) -> list[list[str]]:
        """Categories of every row, build and live."""
        return self.categories + [p.categories for p in self.live.papers]

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
        wanted_categories, wanted_topics = frozenset(categories), frozenset(topics)
        if since is None and until is None and not wanted_categories and not wanted_topics:
            return None
        key = (since, until, wanted_categories, wanted_topics, self.version)
        with self._allowed_lock:
            found = self._allowed.get(key)
        if found is None:
            found = self._filtered(since, until, wanted_categories, wanted_topics)
            found.setflags(write=False)  # shared by the requests that ask the same
            with self._allowed_lock:
                self._allowed[key] = found
                if len(self._allowed) > ALLOWED_KEPT:
                    del self._allowed[next(iter(self._allowed))]  # the oldest
        return found

    def _filtered(
        self,
        since: str | None,
        until: str | None,
        wanted_categories: frozenset[str],
        wanted_topics: frozenset[int],
    ) -> npt.NDArray[np.int64]:
        condition = (since, until, wanted_categories, set(wanted_topics))
        keep = self.row_index.get().mask(*condition, self.assignments)
        if self.hidden:
            hidden = np.fromiter(self.hidden, dtype=np.int64)
            keep[hidden[hidden < self.size]] = False
        rows = np.flatnonzero(keep)
        live = self.live
        if not live.papers:
            return rows
        extra = [
            self.size + j
            for j, paper in enumerate(live.papers)
            if self.size + j not in self.hidden
            and matches(paper.date, paper.categories, int(live.topics[j]), *condition)
        ]
        return np.concatenate([rows, np.asarray(extra, dtype=np.int64)])

    def allowed(self, filters: PaperFilter) -> npt.NDArray[np.int64] | None:
        """Visible rows that ``filters`` lets through (None when it sets no condition)."""
        if not filters.given:
            return None
        return self.filter_rows(filters.since, filters.until, filters.categories, filters.topics)

    def added_since(self, day: str) -> list[int]:
        """Visible rows of papers added live on or after ``day`` (YYYY-MM-DD)."""
        hidden = self.hidden
        return [
            self.size + j
            for j, at in enumerate(self.live.added_at)
            if at[:10] >= day and self.size + j not in hidden
        ]

    # -- topics -----------------------------------------------------------------------------

    def topic_of(self, row: int) -> int:
        if row < self.size:
            return int(self.assignments[row])
        return int(self.live.topics[row - self.size])

    def outlier_of(self, row: int) -> bool:
        """Whether HDBSCAN (or the placement vote) called the paper at ``row`` noise."""
        if row < self.size:
            return bool(self.outliers[row])
        return bool(self.live.outliers[row - self.size])

    def confidence_of(self, row: int) -> float:
        """The paper's confidence in its topic (0-1)."""
        if row < self.size:
            value = float(self.confidence[row])
        else:
            value = float(self.live.confidence[row - self.size])
        return round(min(1.0, max(0.0, value)), 4)

    def all_outliers(self) -> npt.NDArray[np.bool_]:
        return np.concatenate([self.outliers, self.live.outliers]).astype(np.bool_)

    def all_confidence(self) -> npt.NDArray[np.float32]:
        return np.concatenate([self.confidence, self.live.confidence]).astype(np.float32)

    def topic_label(self, topic_id: int) -> str:
        topic = self.topics.get(topic_id)
        return (topic.name or topic.label) if topic else NOISE_LABEL

    def topic(self, topic_id: int) -> TopicEntry:
        topic = self.topics.get(topic_id)
        if topic is None:
            raise NotFound(f"no topic with id {topic_id}")
        return topic

    def members(self, topic: TopicEntry) -> list[int]:
        """Visible rows of a topic: the build's (centre first), then live additions."""
        live = [self.size + j for j in np.flatnonzero(self.live.topics == topic.id).tolist()]
        return self.visible(topic.members + live)

    # -- vectors ----------------------------------------------------------------------------

    def vector(self, row: int) -> npt.NDArray[np.float32]:
        """One row's embedding as a (1, dim) matrix."""
        if row < self.size:
            return np.asarray(self.vectors[row : row + 1], dtype=np.float32)
        return self.live.vectors[row - self.size : row - self.size + 1]

    def vectors_at(self, rows: list[int]) -> npt.NDArray[np.float32]:
        """Embeddings of these rows (build or live), in order."""
        at = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(at), self.vectors.shape[1]), dtype=np.float32)
        built = at < self.size
        out[built] = self.vectors[at[built]]
        out[~built] = self.live.vectors[at[~built] - self.size]
        return out

    def candidates(self, k: int) -> int:
        """How many neighbours to ask the index for so that k survive hidden papers."""
        return k + min(len(self.hidden), 1000)

    def dense(
        self, queries: npt.NDArray[np.float32], n: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The n nearest rows to each query: the build's index, merged with an exact scan of
        the live additions (few, so brute force is fast and exact). A product-quantised
        index's candidates are rescored from the memory-mapped vectors."""
        stored = self.vectors if reranks(self.manifest.index) else None
        scores, rows = search(self.index, queries, n, stored)
        live = self.live
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

    def nearest(
        self, queries: npt.NDArray[np.float32], n: int, rows: npt.NDArray[np.int64] | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The n nearest rows to each query, among ``rows`` when given (an exact scan of just
        those rows, so a filter never truncates the results) else among all."""
        if rows is None:
            return self.dense(queries, n)
        n = max(1, min(n, len(rows)))
        if not len(rows):
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        best = [self._top_among(query, rows, n) for query in queries]
        return np.vstack([s for s, _ in best]), np.vstack([r for _, r in best])

    def _top_among(
        self, query: npt.NDArray[np.float32], rows: npt.NDArray[np.int64], n: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The n best of ``rows`` for one query, exactly: from a float16 shortlist of the
        build's rows rescored (many rows), else from every row scored."""
        built = np.flatnonzero(rows < self.size)
        if len(built) >= SHORTLIST_MIN_ROWS:
            # the same (read-only) rows object as last time: the gathered copy is found at once
            head = rows if len(built) == len(rows) else rows[built]
            half = self.gathered.half(head, self.vectors)
            short = half.shortlist(query, n)
            if short is not None:
                live = np.flatnonzero(rows >= self.size)
                picked = np.sort(np.concatenate([built[short], live]))
                scores = self.vectors_at(rows[picked].tolist()) @ query
                return _top(scores, rows[picked], n)
        return _top(self._scores_of(query[None, :], rows)[0], rows, n)

    def _scores_of(
        self, queries: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        """Cosine of each query to each of ``rows``, in one matrix product per part: the
        build's rows gathered (or, when they are most of the build, all of it scored and the
        rows picked: reading every vector beats gathering most of them), and live ones."""
        built = rows < self.size
        out = np.empty((len(queries), len(rows)), dtype=np.float32)
        head = rows[built]
        if len(head) > self.size // 3:
            out[:, built] = (queries @ np.asarray(self.vectors).T)[:, head]
        else:
            out[:, built] = queries @ self.gathered.get(head, self.vectors).T
        if not built.all():
            out[:, ~built] = queries @ self.live.vectors[rows[~built] - self.size].T
        return out

    def listed_neighbours(
        self, row: int, k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None:
        """A build paper's precomputed neighbours (see :mod:`service.search.neighbours`) merged
        with the live additions; None when there is no list or too few of it are still served."""
        if self.lists is None or row >= self.size:
            return None
        rows, scores = self.lists[0][row], self.lists[1][row]
        hidden = self.hidden
        served = sum(1 for r in rows.tolist() if r >= 0 and r != row and r not in hidden)
        if served < k:
            return None
        live = self.live
        if not live.papers:
            return scores, rows
        live_scores = live.vectors @ self.vector(row)[0]
        all_scores = np.concatenate([scores, live_scores])
        all_rows = np.concatenate([rows, np.arange(len(live.papers)) + self.size])
        order = np.argsort(-all_scores, kind="stable")
        return all_scores[order], all_rows[order]

    def lexical_scores(self, text: str) -> npt.NDArray[np.float32]:
        """BM25 of every row; live additions, not in the index until the next build, are
        scored on the index's statistics."""
        assert self.lexical is not None
        scores = self.lexical.scores(text)
        live = self.live.papers
        if live:
            extra = self.lexical.score_documents(text, [(p.title, p.abstract) for p in live])
            scores = np.concatenate([scores, extra.astype(scores.dtype)])
        return np.asarray(scores, dtype=np.float32)

    def term_idf(self, words: list[str]) -> dict[str, float] | None:
        """Corpus-wide IDF of these words from the BM25 index (None for builds without one)."""
        return self.lexical.idf(words) if self.lexical is not None else None

    # -- records ----------------------------------------------------------------------------

    def papers_at(self, rows: list[int]) -> dict[int, Paper]:
        """The papers at these rows (build rows read from its snapshot, live ones from memory)."""
        live = self.live
        found = {r: live.papers[r - self.size] for r in rows if r >= self.size}
        found.update(self.papers.papers_at([r for r in rows if r < self.size]))
        return found

    def refs(self, rows: list[int]) -> list[PaperRef]:
        live = self.live.papers
        return [
            PaperRef(
                id=self.ids[r] if r < self.size else live[r - self.size].id,
                title=self.titles[r] if r < self.size else live[r - self.size].title,
                outlier=self.outlier_of(r),
                confidence=self.confidence_of(r),
            )
            for r in rows
        ]

    def hit(
        self, row: int, score: float, dense: float | None = None, lexical: float | None = None
    ) -> Hit:
        """A result from what the view holds in memory (no database read: like-this answers
        in well under a millisecond)."""
        if row < self.size:
            paper_id, title, date, cats = (
                self.ids[row],
                self.titles[row],
                self.dates[row],
                self.categories[row],
            )
        else:
            live = self.live.papers[row - self.size]
            paper_id, title, date, cats = live.id, live.title, live.date, live.categories
        topic = self.topic_of(row)
        return Hit(
            id=paper_id,
            title=title,
            score=round(score, 6),
            dense_score=None if dense is None else round(dense, 6),
            lexical_score=None if lexical is None else round(lexical, 6),
            date=date,
            categories=list(cats),
            topic_id=topic,
            topic_label=self.topic_label(topic),
            outlier=self.outlier_of(row),
            confidence=self.confidence_of(row),
        )

    def hits(
        self, scores: npt.NDArray[np.generic], rows: npt.NDArray[np.generic], skip: int, k: int
    ) -> list[Hit]:
        """The first k served rows as hits, ``skip`` (a query paper's own row) left out."""
        hidden = self.hidden
        kept = [
            (score, row)
            for score, row in zip(scores.tolist(), rows.tolist(), strict=True)
            if row >= 0 and row != skip and row not in hidden
        ][:k]
        return [self.hit(row, score, dense=score) for score, row in kept]

    def close(self) -> None:
        self.papers.close()


ALLOWED_KEPT = 64
"""Filters whose rows are kept (a few KB to 600 KB each at 75k papers)."""
AllowedKey = tuple[str | None, str | None, frozenset[str], frozenset[int], int]
SHORTLIST_MIN_ROWS = 4096
"""Below this many allowed rows an exact product is already cheap: no float16 shortlist."""


def _top(
    scores: npt.NDArray[np.float32], rows: npt.NDArray[np.int64], n: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The n best (score, row) pairs, best first, ties in ``rows`` order: the n best found by
    partitioning (no full sort), plus any tied with the n-th, then ordered."""
    if n < len(scores):
        nth = np.partition(scores, len(scores) - n)[len(scores) - n]
        at = np.flatnonzero(scores >= nth)
    else:
        at = np.arange(len(scores))
    order = at[np.argsort(-scores[at], kind="stable")][:n]
    return scores[order], rows[order]


def _check_model(manifest: BuildManifest, embedder: Embedder) -> None:
    built = manifest.model
    if built.dim != embedder.dim or built.revision != embedder.revision:
        raise ArtifactMismatch(
            f"build {manifest.build_id} was made with model {built.name} (dim {built.dim}, "
            f"revision {short_revision(built.revision)}) but the configured model is "
            f"{embedder.name} (dim {embedder.dim}, revision {short_revision(embedder.revision)}); "
            "rebuild with: paperscope build --force, or set PAPERSCOPE_MODEL, PAPERSCOPE_BACKEND "
            "and PAPERSCOPE_EMBED_MAX_TOKENS to what the build used"
        )


def short_revision(revision: str) -> str:
    """A revision as a reader can compare two: the weights' hash cut to 12 characters, and what
    follows it kept (``+openvino-int8``: a backend's own vectors; ``@64tok``: fewer tokens read),
    which once made two different revisions read the same in this message."""
    marks = [at for at in (revision.find("+"), revision.find("@")) if at >= 0]
    cut = min(marks, default=len(revision))
    return revision[: min(cut, 12)] + revision[cut:]
