"""Live additions: papers posted to a running server, answered at once without a rebuild.

A posted paper is embedded, placed against the served build (topic and map position, see
:mod:`service.topics.placement`) and kept in the store, so the next build includes it and a restart
keeps it.

Papers that land in noise are the *emerging* ones: once as many have gathered as the smallest
topic the build allows, a rebuild may find a new topic among them (:func:`emerging`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from service.artifacts import BuildFolder
from service.embed.backends import Embedder
from service.embed.passages import NO_WINDOWS, Windowing, embed_papers
from service.errors import InvalidInput, NotFound
from service.ingest.common import stable_id
from service.query.engine import Engine
from service.query.view import LiveBatch
from service.schemas import (
    AddedPaper,
    AddReport,
    Emerging,
    Paper,
    PaperIn,
    PaperRef,
    derive_title,
)
from service.store import LiveRow, Store, content_hash
from service.topics.placement import Placer

log = logging.getLogger(__name__)

MAX_PAPERS_PER_REQUEST = 1000
EMERGING_LISTED = 100


class LiveAdditions:
    """Adds posted papers to the served engine and restores them when a build is loaded.

    One per server; additions are serialised by a lock (each is a short embed + place + commit).
    """

    def __init__(
        self, db_path: Path, embedder: Embedder | None, windowing: Windowing = NO_WINDOWS
    ) -> None:
        """``windowing``: how builds embed long abstracts (:mod:`service.embed.passages`), so that
        posted papers get vectors made the same way."""
        self.db_path = db_path
        self.embedder = embedder
        self.windowing = windowing
        self._lock = threading.Lock()
        self._placers: dict[str, Placer] = {}

    def _placer(self, engine: Engine) -> Placer:
        build_id = engine.manifest.build_id
        if build_id not in self._placers:
            neighbours = engine.manifest.topics.umap_neighbors
            self._placers = {
                build_id: Placer(BuildFolder(engine.build_dir), neighbours)
            }  # keep the newest
        return self._placers[build_id]

    def add(self, engine: Engine, papers: list[Paper]) -> AddReport:
        """Store, embed, place and serve these papers; already-served unchanged ones are kept."""
        if not papers:
            raise InvalidInput("no papers given")
        if len(papers) > MAX_PAPERS_PER_REQUEST:
            raise InvalidInput(
                f"at most {MAX_PAPERS_PER_REQUEST} papers per request, got {len(papers)}"
            )
        if self.embedder is None:
            raise InvalidInput("papers cannot be added without an embedding model")
        ids = [p.id for p in papers]
        if len(set(ids)) != len(ids):
            raise InvalidInput("paper ids must be unique within one request")
        embedder = self.embedder
        with self._lock, Store(self.db_path) as store:
            stored = {p.id: store.get(p.id) for p in papers}
            fresh = [p for p in papers if not _served_unchanged(engine, p, stored[p.id])]
            now = datetime.now(UTC).isoformat(timespec="seconds")
            rows: list[LiveRow] = []
            if fresh:
                vectors, _ = embed_papers(
                    store,
                    embedder,
                    [(p.title, p.abstract) for p in fresh],
                    [content_hash(p.title, p.abstract) for p in fresh],
                    self.windowing,
                    progress=False,
                )
                placed = self._placer(engine).place(vectors)
                rows = [
                    LiveRow(p, engine.manifest.build_id, int(t), float(c[0]), float(c[1]), v, now)
                    for p, t, c, v in zip(fresh, placed.topics, placed.coords, vectors, strict=True)
                ]
            outcomes = store.add_live(papers, rows)
            _serve(engine, rows, self._placer(engine) if rows else None)
        placed_by_id = {r.paper.id: r for r in rows}
        results = []
        for paper, outcome in zip(papers, outcomes, strict=True):
            served = engine.paper(paper.id)
            row = placed_by_id.get(paper.id)
            results.append(
                AddedPaper(
                    id=paper.id,
                    outcome=outcome,
                    placed=row is not None,
                    topic_id=served.topic_id,
                    topic_label=served.topic_label,
                )
            )
        log.info("live: %d papers posted, %d placed", len(papers), len(rows))
        return AddReport(build_id=engine.manifest.build_id, papers=results)

    def add_posted(self, engine: Engine, posted: Sequence[PaperIn]) -> AddReport:
        """Papers posted through the API: an id is derived from the title where none is given."""
        papers = [
            Paper(
                id=p.id or (stable_id(p.title) if p.title else stable_id(p.abstract)),
                title=p.title or derive_title(p.abstract),
                abstract=p.abstract,
                authors=p.authors,
                categories=p.categories,
                date=p.date,
                source="api",
            )
            for p in posted
        ]
        return self.add(engine, papers)

    def delete(self, engine: Engine, paper_id: str) -> None:
        """Delete a paper from the store (so the next build lacks it) and from every answer now."""
        with Store(self.db_path) as store:
            existed = store.delete(paper_id)
        hidden = engine.hide([paper_id])
        if not existed and not hidden:
            raise NotFound(f"no paper with id {paper_id!r}")

    def restore(self, engine: Engine) -> int:
        """Serve the live additions kept in the store that the engine does not serve yet: all of
        them on a freshly loaded engine, those made by other server processes later on.

        Additions placed against this build are served as placed; those placed against another
        build and not part of this one (added after its snapshot, or while serving a fallback)
        are placed again here. Returns how many are served.
        """
        if not self.db_path.exists():
            return 0
        build_id = engine.manifest.build_id
        built = set(engine.paper_ids)
        with self._lock, Store(self.db_path) as store:
            rows = [r for r in store.live_rows() if not _already_served(engine, r)]
            mine = [r for r in rows if r.build_id == build_id]
            stray = [r for r in rows if r.build_id != build_id and r.paper.id not in built]
            if stray:
                placed = self._placer(engine).place(np.stack([r.vector for r in stray]))
                stray = [
                    r._replace(build_id=build_id, topic=int(t), x=float(c[0]), y=float(c[1]))
                    for r, t, c in zip(stray, placed.topics, placed.coords, strict=True)
                ]
                store.move_live(stray)
            _serve(engine, mine + stray, self._placer(engine) if mine or stray else None)
        if mine or stray:
            log.info(
                "live: serving %d papers added since build %s (%d placed again)",
                len(mine) + len(stray),
                build_id,
                len(stray),
            )
        return len(mine) + len(stray)


def _already_served(engine: Engine, row: LiveRow) -> bool:
    """Whether the engine serves this very addition (another server process may have added
    it, or re-posted the paper since, which :meth:`LiveAdditions.restore` then picks up)."""
    j = engine.live.row_of.get(row.paper.id)
    return j is not None and engine.live.added_at[j] == row.added_at


def _served_unchanged(engine: Engine, paper: Paper, stored: Paper | None) -> bool:
    """True when the engine already answers this exact paper: nothing to embed or place.

    A paper stored unchanged but not served (ingested by the CLI since the build) is placed.
    """
    if stored != paper or not engine.has_paper(paper.id):
        return False
    served = engine.paper(paper.id)
    return Paper(**served.model_dump(include=set(Paper.model_fields))) == paper


def _serve(engine: Engine, rows: list[LiveRow], placer: Placer | None) -> None:
    """Serve the rows as placed; their outlier flags and confidences (not stored) come from
    placing them again, which gives the same topics (placement is deterministic)."""
    if not rows or placer is None:
        return
    vectors = np.stack([r.vector for r in rows]).astype(np.float32)
    again = placer.place(vectors)
    batch = LiveBatch(
        [r.paper for r in rows],
        vectors,
        np.array([r.topic for r in rows], dtype=np.int32),
        np.array([[r.x, r.y] for r in rows], dtype=np.float32),
        [r.added_at for r in rows],
        again.outliers,
        again.confidence,
    )
    engine.add_live(batch)


def emerging(engine: Engine) -> Emerging:
    """Papers added since the build that fit no topic well (outliers: the vote of their
    neighbours says noise, whether or not they were assigned a topic), and whether a rebuild is
    due: when as many have gathered as the build's smallest allowed topic, they may form a new
    one."""
    live = engine.live
    served = [
        j
        for j, p in enumerate(live.papers)
        if live.row_of.get(p.id) == j and engine.has_paper(p.id)
    ]
    unassigned = [j for j in served if bool(live.outliers[j])]
    threshold = engine.manifest.topics.min_cluster_size
    return Emerging(
        build_id=engine.manifest.build_id,
        added_since_build=len(served),
        unassigned=len(unassigned),
        threshold=threshold,
        rebuild_suggested=len(unassigned) >= threshold,
        papers=[
            PaperRef(id=live.papers[j].id, title=live.papers[j].title)
            for j in unassigned[-EMERGING_LISTED:]
        ],
    )
