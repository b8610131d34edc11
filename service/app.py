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

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from service.artifacts import require_build, sync_lock
from service.config import Settings
from service.embed.backends import Embedder, explain_choice, load_embedder
from service.embed.passages import load_windowing
from service.errors import MailError, NotReady, StorageError, SyncRunning, WritesDisabled
from service.ingest import oai_sync
from service.mail import Mailer, RecipientRefused
from service.pipeline.schedule import Every
from service.query import collections, curation, digest, export, feedback, subtopics
from service.query.engine import Engine
from service.query.export import Format
from service.query.live import LiveAdditions, emerging
from service.query.serving import BuildWatcher
from service.schemas import (
    AddReport,
    BuildManifest,
    CollectionIn,
    CollectionOut,
    DigestReport,
    Emerging,
    Feed,
    FeedbackIn,
    Hit,
    PaperFilter,
    PaperIn,
    Ready,
    SubscriberOut,
    SyncReport,
    TopicDetail,
    TopicEdit,
)
from service.search.fusion import Mode, fusion_params, parse_mode, parse_modes
from service.store import Store

if TYPE_CHECKING:  # the evaluations load sklearn and the build: only for eval commands
    from service.eval.clustering import ClusterReport
    from service.eval.retrieval import EvalReport

HYBRID_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)
"""The dense weights ``eval retrieval --two-fold`` tunes over."""

log = logging.getLogger(__name__)


class Paperscope:
    """One per server process, or per command: the settings and everything set up from them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.watcher: BuildWatcher | None = None
        """The server's build watcher, from :meth:`serve` on; None in a command."""
        self.schedule: Every | None = None
        """The server's background sync (PAPERSCOPE_SYNC_EVERY), from :meth:`serve` on."""

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
        if self.db_path.exists():  # papers added to the server since the build, topic edits
            LiveAdditions(self.db_path, embedder).restore(engine)
            curation.apply(engine, self.db_path)
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
        if self.settings.sync_every > 0:
            self.schedule = self.sync_schedule(lambda: embedder).start()
        return watcher

    def stop(self) -> None:
        if self.schedule is not None:
            self.schedule.stop()
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
            last_synced=self._last_synced_if_readable(),
        )

    def _last_synced_if_readable(self) -> str | None:
        """``last_synced`` for /ready, which must answer from memory while the disk is full or
        failing (the build is served all the same): None when the database cannot be opened."""
        try:
            return self.last_synced()
        except StorageError:
            return None

    def backend_choice(self) -> tuple[str, str]:
        """The embedding backend these settings give, and why (``auto``: measured here)."""
        return explain_choice(self.settings)

    def papers_stored(self) -> int:
        """Papers in the database (checked sound first)."""
        with Store(self.db_path) as store:
            store.ensure_sound()
            return store.count()

    def emerging(self, engine: Engine) -> Emerging:
        return emerging(engine)

    # -- following a repository (OAI-PMH) ---------------------------------------------------

    def harvest_request(
        self, from_date: str | None = None, until: str | None = None
    ) -> oai_sync.Harvest:
        """What ``paperscope sync`` asks for: the configured endpoint, set and patience."""
        settings = self.settings
        return oai_sync.Harvest(
            endpoint=settings.sync_endpoint,
            set_spec=settings.sync_set or None,
            metadata_prefix=settings.sync_metadata_prefix,
            from_date=from_date,
            until=until,
            retries=settings.sync_retries,
            delay=settings.sync_delay,
        )

    def sync(
        self,
        harvest: oai_sync.Harvest,
        build: bool = True,
        embedder: Callable[[], Embedder] | None = None,
        progress: bool = True,
    ) -> tuple[SyncReport, tuple[Path, BuildManifest, bool] | None]:
        """Harvest into the papers database, then build as ``paperscope build`` does
        (incrementally when few papers changed), then :meth:`after_sync`. One sync at a time
        per data folder (:class:`SyncRunning` otherwise)."""
        with sync_lock(self.settings.sync_lock_path):
            with Store(self.db_path) as store:
                store.ensure_sound()  # never write into a damaged database
                report = oai_sync.sync(store, harvest, progress)
            built = self.build(embedder, progress=progress) if build else None
        if built is not None:
            report.build_id = built[1].build_id
        self.after_sync(report)
        return report, built

    def after_sync(self, report: SyncReport) -> None:
        """Called after each successful sync and its build (``report.build_id``; None with
        ``--no-build``), by the command and the server's schedule alike: the place for what
        follows new papers: with a mail server set (``PAPERSCOPE_SMTP_HOST``) and a new build,
        the collections' digests are sent (``digest send``). A mail failure is logged, not
        raised: the papers are in, and the unsent digests go out after the next sync."""
        if report.build_id is None or not self.settings.smtp_host:
            return
        try:
            sent = self.send_digests()
        except MailError as err:
            log.warning("digests after sync not sent: %s", err.message)
            return
        log.info("digests after sync: %d mails", len(sent.mails))

    def build(
        self,
        embedder: Callable[[], Embedder] | None = None,
        force: bool = False,
        progress: bool = True,
    ) -> tuple[Path, BuildManifest, bool]:
        """``paperscope build``: (build folder, manifest, whether a new build was made)."""
        from service.pipeline.pipeline import run_build

        factory = embedder or (lambda: load_embedder(self.settings))
        return run_build(self.settings, factory, force=force, progress=progress)

    def last_synced(self) -> str | None:
        """When papers were last harvested (UTC, ISO 8601); None: never."""
        if not self.db_path.exists():
            return None
        with Store(self.db_path) as store:
            return store.last_synced()

    def sync_schedule(self, embedder: Callable[[], Embedder]) -> Every:
        """The server's background sync: due PAPERSCOPE_SYNC_EVERY after the last one."""
        period = self.settings.sync_every

        def due() -> float:
            last = self.last_synced()
            if last is None:
                return 0.0
            return period - (datetime.now(UTC) - datetime.fromisoformat(last)).total_seconds()

        def job() -> None:
            try:
                report, _ = self.sync(self.harvest_request(), embedder=embedder, progress=False)
            except SyncRunning:  # a command or another server process is at it
                return
            oai_sync.log.info("%s", oai_sync.summary(report))

        return Every("sync", period, job, due)

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

    # -- curation: topics renamed, merged, papers moved (kept across builds) --------------------

    def topic_edits(self, engine: Engine) -> list[TopicEdit]:
        return curation.listing(engine, self.db_path)

    def rename_topic(self, engine: Engine, topic_id: int, name: str) -> TopicEdit:
        return curation.rename(engine, self.db_path, topic_id, name)

    def merge_topics(self, engine: Engine, into: int, topics: list[int]) -> TopicEdit:
        return curation.merge(engine, self.db_path, into, topics)

    def move_papers(self, engine: Engine, topic_id: int, paper_ids: list[str]) -> TopicEdit:
        return curation.move(engine, self.db_path, topic_id, paper_ids)

    def undo_topic_edit(self, engine: Engine, edit_id: int) -> None:
        curation.undo(engine, self.db_path, edit_id)

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
        digest.forget(self.db_path, name)

    def feed(self, engine: Engine, name: str, since: str | None, limit: int) -> Feed:
        return collections.feed(self.db_path, engine, name, since, limit)

    def rate(self, engine: Engine, name: str, body: FeedbackIn) -> CollectionOut:
        """A thumbs up or down on a paper of a collection."""
        return feedback.rate(self.db_path, engine, name, body)

    def uncertain(self, engine: Engine, name: str, k: int) -> Feed:
        """The papers a collection's classifier is least sure about ("help me decide")."""
        return feedback.uncertain(self.db_path, engine, name, k)

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

    # -- email digests -------------------------------------------------------------------------

    def subscribers(self, name: str) -> list[SubscriberOut]:
        return digest.subscribers(self.db_path, name)

    def subscribe(self, name: str, email: str) -> tuple[SubscriberOut, bool]:
        """Subscribe to a collection's digest; also says whether the subscription is new."""
        return digest.subscribe(self.db_path, name, email)

    def unsubscribe(self, name: str, email: str) -> None:
        digest.unsubscribe(self.db_path, name, email)

    def unsubscribe_link(self, token: str) -> str:
        """Follow an unsubscribe link: the plain HTML page that says what it did."""
        return digest.unsubscribed_page(digest.unsubscribe_token(self.db_path, token))

    def send_digests(
        self, engine: Engine | None = None, collection: str | None = None, dry_run: bool = False
    ) -> DigestReport:
        """Mail each subscriber the papers of their collection's feed not sent to them before
        (call it after each sync). A digest is recorded as sent once the mail server accepted
        it; MailError when the server cannot be reached or refuses the login (nothing recorded
        for what was not sent). Without ``engine``: the served build, else the current one."""
        if engine is None and self.served() is None:
            opened = self.open_engine(with_model=False)
            try:
                return self.send_digests(opened, collection, dry_run)
            finally:
                opened.close()
        engine = engine or self.engine()
        due, idle = digest.pending(self.db_path, engine, self.settings.digest_papers, collection)
        if dry_run or not due:
            base = self.default_base_url()
            shown = [digest.outcome(d, "dry-run", text=digest.plain_text(d, base)) for d in due]
            return DigestReport(dry_run=dry_run, mails=shown, nothing_new=idle)
        mails = []
        with Mailer(self.settings) as mailer:
            for pending in due:
                message = digest.compose(pending, self.default_base_url(), mailer.sender)
                try:
                    mailer.send(message)
                except RecipientRefused as err:
                    mails.append(digest.outcome(pending, "refused", err.message))
                    continue
                digest.record(self.db_path, pending)
                mails.append(digest.outcome(pending, "sent"))
        return DigestReport(dry_run=False, mails=mails, nothing_new=idle)

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
        noise_stability: bool = False,
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
            noise_stability,
        )
