"""The application: one :class:`Paperscope` object behind the API and the CLI.

It is built from :class:`Settings` and owns what both front doors used to set up each on its
own: the papers database path, the engine being served (a :class:`BuildWatcher` in the server,
one opened build in a command), the settings' defaults (search mode, fusion, duplicate
threshold, the feed's base address), collections, feeds (JSON and Atom), exports and the
evaluations' paths. Routes and commands translate HTTP or argv into these calls and the answers
back; nothing outside ``service/query/`` reaches into an engine's build view.

Methods that answer from a build take the engine as their first argument: a request reads the
engine once and is answered by that one build from start to end, even while a new one is
swapped in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from service.artifacts import require_build
from service.config import Settings
from service.embed.backends import Embedder, load_embedder
from service.embed.passages import load_windowing
from service.errors import NotReady, WritesDisabled
from service.query import collections, export, subtopics
from service.query.engine import Engine
from service.query.export import Format
from service.query.live import LiveAdditions, emerging
from service.query.serving import BuildWatcher
from service.schemas import (
    AddReport,
    CollectionIn,
    CollectionOut,
    Emerging,
    Feed,
    Hit,
    PaperFilter,
    PaperIn,
    Ready,
    TopicDetail,
)
from service.search.fusion import Mode, fusion_params, parse_mode, parse_modes
from service.store import Store

if TYPE_CHECKING:  # the evaluations load sklearn and the build: only for eval commands
    from service.eval.clustering import ClusterReport
    from service.eval.retrieval import EvalReport

HYBRID_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)
"""The dense weights ``eval retrieval --two-fold`` tunes over."""


class Paperscope:
    """One per server process, or per command: the settings and everything set up from them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.watcher: BuildWatcher | None = None
        """The server's build watcher, from :meth:`serve` on; None in a command."""

    @property
    def db_path(self) -> Path:
        """The papers database: the one path every part uses."""
        return self.settings.db_path

    # -- where the engine comes from -----------------------------------------------------------

    def open_engine(self, with_model: bool = True) -> Engine:
        """The current build, opened once (a command), with the papers added live since."""
        build = require_build(self.settings)
        embedder = load_embedder(self.settings) if with_model else None
        engine = Engine(build, embedder)
        if self.db_path.exists():  # papers added to the server since the build
            LiveAdditions(self.db_path, embedder).restore(engine)
        return engine

    def serve(self, embedder: Embedder) -> BuildWatcher:
        """Start following the published build (a server); :meth:`stop` ends it."""
        watcher = BuildWatcher(
            self.settings.builds_dir,
            embedder,
            self.settings.reload_seconds,
            self.db_path,
            load_windowing(self.settings),
        )
        watcher.start()
        self.watcher = watcher
        return watcher

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    def engine(self) -> Engine:
        """The engine of the build being served; :class:`NotReady` while there is none."""
        watcher = self._watcher()
        engine = watcher.engine  # read once: the caller uses one build from start to end
        if engine is None:
            raise NotReady(watcher.reason)
        return engine

    def served(self) -> Engine | None:
        """The engine being served now, None while none is (or before :meth:`serve`)."""
        return self.watcher.engine if self.watcher is not None else None

    def _watcher(self) -> BuildWatcher:
        if self.watcher is None:
            raise NotReady("starting up")
        return self.watcher

    def ready(self, engine: Engine) -> Ready:
        return Ready(
            note=self._watcher().note,
            ready=True,
            build_id=engine.manifest.build_id,
            papers=engine.size,
            topics=engine.manifest.n_topics,
            model=engine.manifest.model.name,
            added_live=emerging(engine).added_since_build,
        )

    def papers_stored(self) -> int:
        """Papers in the database (checked sound first)."""
        with Store(self.db_path) as store:
            store.ensure_sound()
            return store.count()

    def emerging(self, engine: Engine) -> Emerging:
        return emerging(engine)

    # -- reads with the settings' defaults -----------------------------------------------------

    def search_mode(self, mode: str | None) -> Mode:
        """The mode asked for, else the configured one (checked)."""
        return parse_mode(mode or self.settings.search_mode)

    def search(
        self,
        engine: Engine,
        text: str,
        k: int,
        mode: str | None,
        filters: PaperFilter,
        offset: int = 0,
    ) -> list[Hit]:
        chosen = self.search_mode(mode)
        return engine.search(text, k, chosen, fusion_params(self.settings), filters, offset)

    def duplicates_of(self, engine: Engine, paper_id: str) -> list[Hit]:
        return engine.duplicates_of(paper_id, self.settings.duplicate_threshold)

    def topic(self, engine: Engine, topic_id: int, limit: int) -> TopicDetail:
        """One topic with its stored sub-topics."""
        return subtopics.topic_detail(engine, self.db_path, topic_id, limit)

    # -- writes --------------------------------------------------------------------------------

    def _live(self) -> LiveAdditions:
        live = self._watcher().live
        if live is None:
            raise WritesDisabled("this server has no papers database to add to")
        return live

    def add_papers(self, engine: Engine, papers: list[PaperIn]) -> AddReport:
        return self._live().add_posted(engine, papers)

    def delete_paper(self, engine: Engine, paper_id: str) -> None:
        self._live().delete(engine, paper_id)

    def split_topic(self, engine: Engine, topic_id: int, limit: int) -> TopicDetail:
        return subtopics.split_topic(engine, self.db_path, topic_id, limit)

    # -- collections and their feeds -----------------------------------------------------------

    def collections(self, engine: Engine) -> list[CollectionOut]:
        return collections.listing(self.db_path, engine)

    def collection(self, engine: Engine, name: str) -> CollectionOut:
        return collections.get(self.db_path, engine, name)

    def put_collection(
        self, engine: Engine, name: str, body: CollectionIn
    ) -> tuple[CollectionOut, bool]:
        """Create or replace; also says whether it was created."""
        return collections.put(self.db_path, engine, name, body)

    def add_to_collection(
        self, engine: Engine, name: str, positive: list[str], negative: list[str], note: str
    ) -> tuple[CollectionOut, bool]:
        return collections.add(self.db_path, engine, name, positive, negative, note)

    def delete_collection(self, name: str) -> None:
        collections.delete(self.db_path, name)

    def feed(self, engine: Engine, name: str, since: str | None, limit: int) -> Feed:
        return collections.feed(self.db_path, engine, name, since, limit)

    def feed_atom(
        self, engine: Engine, name: str, since: str | None, limit: int, base_url: str | None
    ) -> bytes:
        """The feed as Atom; links point to ``base_url``, else PAPERSCOPE_PUBLIC_URL, else
        http://HOST:PORT/ from the settings."""
        result = self.feed(engine, name, since, limit)
        note = collections.get(self.db_path, None, name).note
        return collections.atom(result, base_url or self.default_base_url(), note)

    def default_base_url(self) -> str:
        settings = self.settings
        return settings.public_url or f"http://{settings.host}:{settings.port}/"

    # -- exports -------------------------------------------------------------------------------

    def export(
        self,
        engine: Engine,
        fmt: Format,
        filters: PaperFilter,
        *,
        q: str | None = None,
        k: int,
        topic: int | None = None,
        collection: str | None = None,
        feed: bool = False,
    ) -> Iterator[bytes]:
        """The chosen papers in ``fmt``, as chunks. The list is chosen now (bad input raises
        here, before any byte is sent); the chunks are made as they are read."""
        rows = export.select(
            engine,
            self.db_path,
            filters,
            q=q,
            k=k,
            mode=self.search_mode(None),
            fusion=fusion_params(self.settings),
            topic=topic,
            collection=collection,
            feed=feed,
        )
        return export.stream(engine, rows, fmt)

    @staticmethod
    def export_format(path: Path) -> Format:
        """The format a file's suffix names; refuses an unknown one before anything loads."""
        return export.format_of(path)

    def export_file(self, engine: Engine, path: Path) -> int:
        """Every served paper into ``path``; returns how many."""
        return export.write(engine, path)

    # -- evaluations ---------------------------------------------------------------------------

    def eval_retrieval(
        self, dataset: Path, split: str, modes: str, cache_dir: Path | None, two_fold: bool
    ) -> EvalReport:
        """Each search mode on a BEIR dataset, with the configured BM25 and fusion."""
        from service.eval.retrieval import evaluate
        from service.pipeline.pipeline import lexical_params

        return evaluate(
            dataset,
            split,
            parse_modes(modes),
            load_embedder(self.settings),
            self.settings.eval_cache(cache_dir),
            lexical_params(self.settings),
            fusion_params(self.settings),
            load_windowing(self.settings),
            tune_weights=HYBRID_WEIGHTS if two_fold else (),
        )

    def eval_clustering(
        self,
        corpus: Path,
        label_field: str,
        cache_dir: Path | None,
        limit: int | None,
        bertopic: bool,
        peers: bool = True,
    ) -> ClusterReport:
        """The topics against known labels, with the configured clustering."""
        from service.eval.clustering import evaluate_clustering

        return evaluate_clustering(
            corpus,
            label_field,
            load_embedder(self.settings),
            self.settings.eval_cache(cache_dir),
            load_windowing(self.settings),
            self.settings,
            limit,
            bertopic,
            peers,
        )
